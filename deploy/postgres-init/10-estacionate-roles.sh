#!/bin/sh
# Estacionate's database roles, created on the first start of an empty data directory: the
# postgres image runs /docker-entrypoint-initdb.d/* once, as the bootstrap superuser
# ($POSTGRES_USER), with $POSTGRES_DB already created. docker-compose.prod.yml mounts this directory.
#
#   estacionate_owner  LOGIN; owns the database, its schema and every table; runs the migrations
#                      (the migrate service's MIGRATE_DATABASE_URL). Not a superuser.
#   estacionate_app    NOLOGIN group; migration 0006 grants it rows only: no DDL, no TRUNCATE,
#                      audit_logs SELECT and INSERT (plus the audit_logs_scrub function).
#   estacionate_api    LOGIN, member of estacionate_app: the api, worker and beat (DATABASE_URL).
#
# Passwords come from DB_OWNER_PASSWORD and DB_APP_PASSWORD; role names may be changed with
# DB_OWNER_ROLE and DB_APP_LOGIN_ROLE. The same SQL works on any PostgreSQL (README "Deploying").
set -eu

: "${DB_OWNER_PASSWORD:?set DB_OWNER_PASSWORD}"
: "${DB_APP_PASSWORD:?set DB_APP_PASSWORD}"

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v db="$POSTGRES_DB" \
    -v owner="${DB_OWNER_ROLE:-estacionate_owner}" -v owner_password="$DB_OWNER_PASSWORD" \
    -v app_login="${DB_APP_LOGIN_ROLE:-estacionate_api}" -v app_password="$DB_APP_PASSWORD" <<'SQL'
CREATE ROLE :"owner" LOGIN PASSWORD :'owner_password';
SELECT 'CREATE ROLE estacionate_app NOLOGIN'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'estacionate_app') \gexec
CREATE ROLE :"app_login" LOGIN PASSWORD :'app_password' IN ROLE estacionate_app;

ALTER DATABASE :"db" OWNER TO :"owner";
ALTER SCHEMA public OWNER TO :"owner";
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO estacionate_app;
SQL
