// Package kubernetes holds raterd's Kubernetes manifests (raterd.yaml, and the KEDA
// ScaledObject in keda-scaledobject.yaml) and, in its tests, their offline checks: the
// ScaledObject against the schema of KEDA's own CRD and the metadata KEDA's kafka scaler
// reads, and both files against raterd's config loader. It has no Go code of its own.
package kubernetes
