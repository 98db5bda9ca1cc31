package consumer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"

	"github.com/segmentio/kafka-go"
)

// TopicChecker reports which of the configured topics do not exist in the cluster.
//
// It asks with a Metadata request that never creates a topic: kafka-go's
// Conn.ReadPartitions, which the consumer group uses when it assigns partitions, asks
// the broker to auto-create a missing topic where the broker allows it, so a check built
// on it would make the topic it looks for. Each check uses a fresh kafka-go transport,
// closed when it returns: the answer is the cluster's now, not a transport's cache, and
// no connection or background refresh outlives the check.
type TopicChecker struct {
	brokers []string
	topics  []string
	group   string
	dialer  *kafka.Dialer
}

// TopicReport is what one TopicChecker.Check found.
type TopicReport struct {
	// Missing are the configured topics that do not exist, in configuration order.
	Missing []string
	// Unowned counts, per existing configured topic, the partitions that no member of
	// the consumer group owns while the group is stable: the partitions of a topic
	// created (or grown) after the group's last rebalance, which the group does not
	// pick up until a member restarts. Empty while the group rebalances, has no
	// members, or is not known.
	Unowned map[string]int
	// Partitions counts the partitions of each existing configured topic (a missing
	// topic has no entry).
	Partitions map[string]int
}

// NewTopicChecker checks cfg.Topics on cfg.Brokers, connecting as dialer does (its TLS,
// SASL mechanism, client id, dial timeout, dial function or local address, keep-alive
// and resolver); a nil dialer is cfg.Dialer() (the config's TLS and SASL), as for
// NewGroupReader. Pass the dialer the GroupReader was built with, so the check reaches the
// cluster the way the group does.
func NewTopicChecker(cfg Config, dialer *kafka.Dialer) *TopicChecker {
	if dialer == nil {
		dialer = cfg.Dialer()
	}
	return &TopicChecker{brokers: cfg.Brokers, topics: cfg.Topics, group: cfg.GroupID, dialer: dialer}
}

// Missing returns the checked topics that do not exist, in configuration order (none:
// all exist). ctx bounds the whole check: connecting, TLS and SASL, and the request.
// A topic the broker reports another error for (not authorized, say) is neither
// missing nor known to exist: that is an error.
func (c *TopicChecker) Missing(ctx context.Context) ([]string, error) {
	r, err := c.check(ctx, false)
	return r.Missing, err
}

// Check is Missing, and also counts the partitions of existing topics that no member of
// the group owns (TopicReport.Unowned; a DescribeGroups request, when the group id is set
// and no metadata error occurred).
func (c *TopicChecker) Check(ctx context.Context) (TopicReport, error) {
	return c.check(ctx, true)
}

func (c *TopicChecker) check(ctx context.Context, owners bool) (TopicReport, error) {
	if len(c.topics) == 0 {
		return TopicReport{}, nil
	}
	tr := transportFor(c.dialer, c.topics)
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(c.brokers...), Transport: tr}
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: c.topics})
	if err != nil {
		return TopicReport{}, fmt.Errorf("kafka metadata for topics %v: %w", c.topics, err)
	}
	found := make(map[string]error, len(meta.Topics))
	partitions := make(map[string]int, len(meta.Topics))
	for _, t := range meta.Topics {
		found[t.Name] = t.Error
		partitions[t.Name] = len(t.Partitions)
	}
	var missing []string
	var errs []error
	for _, name := range c.topics {
		terr, ok := found[name]
		switch {
		case !ok || errors.Is(terr, kafka.UnknownTopicOrPartition):
			missing = append(missing, name)
		case terr == nil || errors.Is(terr, kafka.LeaderNotAvailable):
			// Exists (a topic just created may have no leader yet).
		default:
			errs = append(errs, fmt.Errorf("kafka metadata for topic %q: %w", name, terr))
		}
	}
	if len(errs) > 0 {
		return TopicReport{Missing: missing}, errors.Join(errs...)
	}
	report := TopicReport{Missing: missing, Partitions: map[string]int{}}
	for _, name := range c.topics {
		if !slices.Contains(missing, name) {
			report.Partitions[name] = partitions[name]
		}
	}
	if !owners || c.group == "" {
		return report, nil
	}
	groups, err := client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{c.group}})
	if err != nil {
		return report, fmt.Errorf("kafka describe group %s: %w", c.group, err)
	}
	for _, g := range groups.Groups {
		if g.Error != nil || g.GroupState != "Stable" || len(g.Members) == 0 {
			continue // rebalancing, empty or unknown: nothing to say about ownership
		}
		owned := map[string]int{}
		for _, m := range g.Members {
			for _, t := range m.MemberAssignments.Topics {
				owned[t.Topic] += len(t.Partitions)
			}
		}
		for _, name := range c.topics {
			if slices.Contains(missing, name) || partitions[name] <= owned[name] {
				continue
			}
			if report.Unowned == nil {
				report.Unowned = map[string]int{}
			}
			report.Unowned[name] = partitions[name] - owned[name]
		}
	}
	return report, nil
}

// transportFor builds a kafka-go transport that connects as d does (see NewTopicChecker)
// and fetches the metadata of topics only.
func transportFor(d *kafka.Dialer, topics []string) *kafka.Transport {
	// MetadataTopics: the transport's own metadata requests (the ones Client.Metadata is
	// answered from) name these topics, without asking to create them, instead of listing
	// every topic of the cluster.
	tr := &kafka.Transport{MetadataTopics: topics}
	if d == nil {
		return tr
	}
	tr.ClientID, tr.TLS, tr.SASL = d.ClientID, d.TLS, d.SASLMechanism
	if d.Timeout > 0 {
		tr.DialTimeout = d.Timeout
	}
	dial := d.DialFunc
	if dial == nil {
		dial = (&net.Dialer{LocalAddr: d.LocalAddr, FallbackDelay: d.FallbackDelay, KeepAlive: d.KeepAlive}).DialContext
	}
	if d.Resolver == nil {
		tr.Dial = dial
		return tr
	}
	resolver := d.Resolver
	// As kafka.Dialer does: the resolver's first address replaces the host, and gives the
	// port only when the broker address has none.
	tr.Dial = func(ctx context.Context, network, address string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(address)
		if err != nil {
			host, port = address, ""
		}
		resolved, err := resolver.LookupHost(ctx, host)
		if err != nil {
			return nil, fmt.Errorf("resolve kafka broker host %s: %w", host, err)
		}
		if len(resolved) > 0 {
			rhost, rport, err := net.SplitHostPort(resolved[0])
			if err != nil {
				rhost, rport = resolved[0], ""
			}
			host = rhost
			if port == "" {
				port = rport
			}
		}
		return dial(ctx, network, net.JoinHostPort(host, port))
	}
	return tr
}
