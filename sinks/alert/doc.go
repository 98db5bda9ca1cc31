// Package alert is the rules-and-lifecycle layer of raterd's quality alerting: the rule
// configuration (Config, RuleConfig, silences), the Manager that feeds each rule's
// detector per series and runs the alert lifecycle (pending → firing → resolved,
// re-notification, missing data, silences, expiry), the Store that shares alert state
// between processes, the drill-down SQL of a notification, and the alerting section of
// raterd's configuration (AlertingConfig, ChannelConfig) with Build, which makes the
// Manager and its channels from it.
//
// The layers below it are package raterd/sinks/alert/detect (pure detectors: thresholds,
// control charts with their baselines, canary comparisons) and package
// raterd/sinks/alert/notify (notifications, channels, the Deliverer and the channel
// registry); neither imports this package. docs/alerting.md describes it all.
package alert
