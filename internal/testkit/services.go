package testkit

import "testing"

// Services are the addresses of the real Kafka, Redis and ClickHouse the integration
// tests run against (scripts/services.sh env).
type Services struct{ Kafka, Redis, ClickHouse string }

// RequireServices returns the addresses of the real Kafka, Redis and ClickHouse, skipping
// the test (or failing it, with RATERD_REQUIRE_SERVICES set) when one is not configured.
func RequireServices(t testing.TB) Services {
	t.Helper()
	return Services{
		Kafka:      Service(t, "RATERD_TEST_KAFKA", "Kafka broker"),
		Redis:      Service(t, "RATERD_TEST_REDIS", "Redis"),
		ClickHouse: Service(t, "RATERD_TEST_CLICKHOUSE", "ClickHouse"),
	}
}
