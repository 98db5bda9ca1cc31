package sinks

import "errors"

// PermanentError is a sink error that retrying the same write cannot cure: the server
// refused it for what it is — a column or table that is not there, a type that does not
// match, a missing permission, a message larger than the topic takes even cut down —
// and not for a passing state such as a lost connection or a timeout. Sinks return it
// without spending their own attempts; the consumer cannot drop the rows (no loss), so it
// holds the batch and retries it at its longest backoff, with an error log naming Class
// and the raterd.consumer.batch.blocked metric, until the cause is fixed (see
// docs/reliability.md).
type PermanentError struct {
	// Class names the cause for logs and metric attributes: clickhouse_schema,
	// clickhouse_access, clickhouse_data, kafka_authorization, kafka_message_too_large, …
	Class string
	// Err is the sink's error.
	Err error
}

// Permanent wraps err as a PermanentError of class; nil stays nil.
func Permanent(class string, err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Class: class, Err: err}
}

// Error implements error: the sink's error, after "permanent (<class>): ".
func (e *PermanentError) Error() string { return "permanent (" + e.Class + "): " + e.Err.Error() }

// Unwrap returns the sink's error.
func (e *PermanentError) Unwrap() error { return e.Err }

// PermanentClass implements the consumer's permanent-error test
// (consumer.PermanentSinkError): the class of the cause.
func (e *PermanentError) PermanentClass() string { return e.Class }

// PermanentClass returns the class of the first PermanentError in err's chain, or "" when
// err is not permanent.
func PermanentClass(err error) string {
	var pe *PermanentError
	if errors.As(err, &pe) {
		return pe.Class
	}
	return ""
}
