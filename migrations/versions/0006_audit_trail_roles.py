"""audit trail: no TRUNCATE, one narrow scrub path, and a least-privileged role for the app

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

The application runs as a member of the NOLOGIN group role ``estacionate_app``, distinct from
the role that owns the tables and runs the migrations. The group may read and write rows, but
owns nothing, so it can run no DDL (CREATE, ALTER, DROP) and has no TRUNCATE anywhere. On
``audit_logs`` it may only SELECT and INSERT; the one way it can change a row is
``audit_logs_scrub(...)``, a SECURITY DEFINER function owned by the migration owner that blanks
a person's personal fields (metadata values, ip, user_agent) and marks the rows ``scrubbed``.

The trigger guards the trail even from the owner: DELETE and TRUNCATE always raise, and an
UPDATE passes only if it is exactly a scrub (every other column unchanged, ip and user_agent
NULL, metadata's values blanked, scrubbed true).

Roles are cluster-wide and several databases (test clones, other deployments) share a cluster:
the group role is created only if missing, tolerating a concurrent creator, and the downgrade
revokes its privileges here but never drops it. Default privileges make tables that later
migrations create (as the same owner) available to the group without a migration touching it.
"""

from alembic import op

# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

APP_ROLE = "estacionate_app"

CREATE_APP_ROLE = f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
        BEGIN
            CREATE ROLE {APP_ROLE} NOLOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created meanwhile by a migration of another database
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'role {APP_ROLE} is missing and % may not create it', current_user
                    USING HINT = 'create it first: CREATE ROLE {APP_ROLE} NOLOGIN (see README "Deploying")';
        END;
    END IF;
END
$$;
"""

GRANTS = f"""
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO {APP_ROLE};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE};
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE};
REVOKE UPDATE, DELETE ON audit_logs FROM {APP_ROLE};
REVOKE INSERT, UPDATE, DELETE ON alembic_version FROM {APP_ROLE};
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {APP_ROLE};
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {APP_ROLE};
"""

REVOKES = f"""
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE USAGE, SELECT ON SEQUENCES FROM {APP_ROLE};
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM {APP_ROLE};
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {APP_ROLE};
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {APP_ROLE};
REVOKE USAGE ON SCHEMA public FROM {APP_ROLE};
"""

# What a scrubbed row's metadata becomes: the same keys, every value null.
BLANKED = """
CREATE FUNCTION audit_logs_blanked(metadata jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(jsonb_object_agg(key, NULL), '{}'::jsonb)
    FROM jsonb_object_keys(CASE WHEN jsonb_typeof(metadata) = 'object' THEN metadata ELSE '{}'::jsonb END) AS key
$$;
"""

GUARD = """
CREATE FUNCTION audit_logs_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.scrubbed
           AND NEW.ip IS NULL
           AND NEW.user_agent IS NULL
           AND NEW.metadata = public.audit_logs_blanked(OLD.metadata)
           AND to_jsonb(NEW) - ARRAY['metadata', 'ip', 'user_agent', 'scrubbed']
               = to_jsonb(OLD) - ARRAY['metadata', 'ip', 'user_agent', 'scrubbed']
        THEN
            RETURN NEW;  -- a scrub, and nothing but a scrub
        END IF;
    END IF;
    RAISE EXCEPTION 'audit_logs is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
DROP TRIGGER audit_logs_append_only ON audit_logs;
CREATE TRIGGER audit_logs_append_only
    BEFORE UPDATE OR DELETE ON audit_logs
    FOR EACH ROW EXECUTE FUNCTION audit_logs_guard();
CREATE TRIGGER audit_logs_no_truncate
    BEFORE TRUNCATE ON audit_logs
    FOR EACH STATEMENT EXECUTE FUNCTION audit_logs_guard();
"""

UNGUARD = """
DROP TRIGGER audit_logs_no_truncate ON audit_logs;
DROP TRIGGER audit_logs_append_only ON audit_logs;
CREATE TRIGGER audit_logs_append_only
    BEFORE UPDATE OR DELETE ON audit_logs
    FOR EACH ROW EXECUTE FUNCTION audit_logs_refuse_change();
DROP FUNCTION audit_logs_guard();
"""

# The GDPR scrub (a later issue calls it): every row a person acted in, and every row about the
# given entities. Returns how many rows it scrubbed; rows already scrubbed are left alone.
SCRUB = f"""
CREATE FUNCTION audit_logs_scrub(
    p_actor_id uuid,
    p_entity_type text DEFAULT NULL,
    p_entity_ids text[] DEFAULT NULL
) RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    scrubbed_rows bigint;
BEGIN
    UPDATE public.audit_logs
       SET metadata = public.audit_logs_blanked(metadata), ip = NULL, user_agent = NULL, scrubbed = true
     WHERE NOT scrubbed
       AND ((p_actor_id IS NOT NULL AND actor_id = p_actor_id)
            OR (p_entity_type IS NOT NULL AND entity_type = p_entity_type AND entity_id = ANY (p_entity_ids)));
    GET DIAGNOSTICS scrubbed_rows = ROW_COUNT;
    RETURN scrubbed_rows;
END;
$$;
REVOKE ALL ON FUNCTION audit_logs_scrub(uuid, text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_logs_scrub(uuid, text, text[]) TO {APP_ROLE};
"""


def upgrade():
    op.execute(BLANKED)
    op.execute(GUARD)
    op.execute(CREATE_APP_ROLE)
    op.execute(GRANTS)
    op.execute(SCRUB)


def downgrade():
    op.execute("DROP FUNCTION audit_logs_scrub(uuid, text, text[])")
    op.execute(REVOKES)
    op.execute(UNGUARD)
    op.execute("DROP FUNCTION audit_logs_blanked(jsonb)")
