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

// KafkaSecure are the secured listeners of the dev broker (scripts/services.sh env): SASL_SSL
// with SCRAM users, and SSL requiring a client certificate, with the CA that signed the
// broker's certificate and the client's.
type KafkaSecure struct {
	// SASLSSL and MTLS are the listeners' host:port.
	SASLSSL, MTLS string
	// CA is the PEM CA file; ClientCert and ClientKey the client's certificate for mTLS.
	CA, ClientCert, ClientKey string
	// User and Password are the SCRAM-SHA-512 (and -256, and PLAIN) credentials.
	User, Password string
}

// RequireKafkaSecure returns the secured Kafka listeners, skipping the test (or failing it,
// with RATERD_REQUIRE_SERVICES set) when they are not configured.
func RequireKafkaSecure(t testing.TB) KafkaSecure {
	t.Helper()
	return KafkaSecure{
		SASLSSL:    Service(t, "RATERD_TEST_KAFKA_SASL_SSL", "Kafka SASL_SSL listener"),
		MTLS:       Service(t, "RATERD_TEST_KAFKA_MTLS", "Kafka mTLS listener"),
		CA:         Service(t, "RATERD_TEST_KAFKA_CA", "Kafka CA file"),
		ClientCert: Service(t, "RATERD_TEST_KAFKA_CLIENT_CERT", "Kafka client certificate"),
		ClientKey:  Service(t, "RATERD_TEST_KAFKA_CLIENT_KEY", "Kafka client key"),
		User:       Service(t, "RATERD_TEST_KAFKA_SCRAM_USER", "Kafka SCRAM user"),
		Password:   Service(t, "RATERD_TEST_KAFKA_SCRAM_PASSWORD", "Kafka SCRAM password"),
	}
}

// ClickHouseRoles are the dev ClickHouse's least-privilege users (scripts/services.sh
// env, deploy/clickhouse/users.xml): a migration user that may change the schema, and the
// writer raterd run uses, which may only read and insert. Both may use only the database
// LeastPrivilegeDB (and raterd).
type ClickHouseRoles struct {
	MigratorUser, MigratorPassword string
	WriterUser, WriterPassword     string
}

// LeastPrivilegeDB is the database the dev stack's least-privilege users may use.
const LeastPrivilegeDB = "raterd_least_privilege"

// RequireClickHouseRoles returns the least-privilege users, skipping the test (or failing
// it, with RATERD_REQUIRE_SERVICES set) when they are not configured.
func RequireClickHouseRoles(t testing.TB) ClickHouseRoles {
	t.Helper()
	return ClickHouseRoles{
		MigratorUser:     Service(t, "RATERD_TEST_CLICKHOUSE_MIGRATOR_USER", "ClickHouse migration user"),
		MigratorPassword: Service(t, "RATERD_TEST_CLICKHOUSE_MIGRATOR_PASSWORD", "ClickHouse migration user's password"),
		WriterUser:       Service(t, "RATERD_TEST_CLICKHOUSE_WRITER_USER", "ClickHouse writer user"),
		WriterPassword:   Service(t, "RATERD_TEST_CLICKHOUSE_WRITER_PASSWORD", "ClickHouse writer user's password"),
	}
}
