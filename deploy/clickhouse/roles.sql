-- Least privilege for raterd on ClickHouse releases with SQL access control (20.4+):
-- a migration role for `raterd migrate`, and a writer role for `raterd run`, which may
-- only read and insert. Run it as an administrator; replace the passwords (or use your
-- own authentication) and the database name if you do not use `raterd`.
-- ClickHouse 18.16 (the dev stack) has no roles: deploy/clickhouse/users.xml does the
-- same there with allow_ddl = 0.

-- Creates the database, its tables and materialized views, adds columns, sets TTLs and
-- rebuilds a view (migration 4 drops and re-creates scores_hourly; POPULATE reads scores).
CREATE ROLE IF NOT EXISTS raterd_migration;
GRANT CREATE DATABASE, CREATE TABLE, CREATE VIEW, ALTER, DROP TABLE, DROP VIEW, SELECT, INSERT
    ON raterd.* TO raterd_migration;

-- Writes scores, dead letters and alerts (an INSERT into scores feeds the materialized
-- views, whose target tables are in the same database), reads the schema version and the
-- alert state. No CREATE, ALTER, DROP or TRUNCATE.
CREATE ROLE IF NOT EXISTS raterd_write;
GRANT SELECT, INSERT ON raterd.* TO raterd_write;

-- A granted role is a default role unless DEFAULT ROLE says otherwise.
CREATE USER IF NOT EXISTS raterd_migrator IDENTIFIED WITH sha256_password BY 'change-me-migrator';
CREATE USER IF NOT EXISTS raterd_writer IDENTIFIED WITH sha256_password BY 'change-me-writer';
GRANT raterd_migration TO raterd_migrator;
GRANT raterd_write TO raterd_writer;
