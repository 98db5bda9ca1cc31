// Package testkit holds the helpers that raterd's integration tests share: finding the
// real services that scripts/services.sh starts, creating Kafka topics on them, and
// running a private redis-server that a test may kill and restart.
//
// Only test files import it. Services are found through environment variables
// (RATERD_TEST_KAFKA, RATERD_TEST_REDIS, RATERD_TEST_CLICKHOUSE, …, printed by
// `scripts/services.sh env`); a test whose service is missing is skipped, or failed when
// RATERD_REQUIRE_SERVICES is set (as .ci/run does), so CI can never pass by skipping.
package testkit

import (
	"os"
	"testing"
)

// RequireServicesEnv is the environment variable that turns a missing service from a
// skip into a failure.
const RequireServicesEnv = "RATERD_REQUIRE_SERVICES"

// Service returns the value of the environment variable envVar: the address (or other
// setting) of a real service, what describing it in messages, e.g. "Kafka broker". When
// envVar is unset it skips the test, or fails it when RATERD_REQUIRE_SERVICES is set; both
// messages tell the user how to start the services and export their settings.
func Service(t testing.TB, envVar, what string) string {
	t.Helper()
	v := os.Getenv(envVar)
	if v == "" {
		if os.Getenv(RequireServicesEnv) != "" {
			t.Fatalf("%s (%s) is not set; run eval \"$(scripts/services.sh env)\"", envVar, what)
		}
		t.Skipf("%s (%s) is not set; start services with scripts/services.sh up and run eval \"$(scripts/services.sh env)\"", envVar, what)
	}
	return v
}
