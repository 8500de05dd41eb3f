"""The relational schema (SQLAlchemy Core). Alembic migrations in ``consult/migrations`` create it.

Integer ``seq`` columns give a stable order for cursor paging; public ids are random UUIDs.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

TS = DateTime(timezone=True)

directory_users = Table(
    "directory_users",
    metadata,
    Column("user_id", String(128), primary_key=True),
    Column("org", String(64), nullable=False),
    Column("roles", JSON, nullable=False),
    Column("name", String(200), nullable=False),
    Column("last_seen", TS, nullable=False),
)

experts = Table(
    "experts",
    metadata,
    Column("user_id", String(128), primary_key=True),
    Column("org", String(64), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("topics", JSON, nullable=False),
    Column("pools", JSON, nullable=False),
    Column("languages", JSON, nullable=False),
    Column("on_duty", Boolean, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("updated_by", String(128), nullable=False),
)

consultations = Table(
    "consultations",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("topic", String(64), nullable=False),
    Column("urgency", String(16), nullable=False),
    Column("question_sealed", LargeBinary, nullable=False),
    Column("question_spans", JSON),
    Column("purpose", String(64), nullable=False),
    Column("origin_org", String(64), nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("created_role", String(32)),
    Column("target_org", String(64), nullable=False),
    Column("pool", String(64)),
    Column("expert_id", String(128)),
    Column("client_ref", String(64)),
    Column("case_ref", String(128)),
    Column("status", String(16), nullable=False),
    Column("claimed_by", String(128)),
    Column("claimed_at", TS),
    Column("first_response_at", TS),
    Column("closed_at", TS),
    Column("outcome", String(32)),
    Column("outcome_note_sealed", LargeBinary),
    # The close note's author and the positions of the identifiers in it, so that the note is
    # filtered per reader like a message (consult/services/gate.py).
    Column("outcome_note_spans", JSON),
    Column("closed_by", String(128)),
    Column("closed_org", String(64)),
    Column("closed_role", String(32)),
    Column("legal_hold", Boolean, nullable=False, server_default="0"),
    Column("shredded_at", TS),
    Column("created_at", TS, nullable=False),
    # Set when an unclaimed consultation escalates (docs/capabilities.md C1): that pool's on-duty experts are
    # offered it too, besides those the original routing matches.
    Column("escalated_pool", String(64)),
    # Categories the question looked like and the sender confirmed (policies/signals.toml).
    Column("question_flagged", JSON),
    # Categories the close note looked like and the closer confirmed (policies/signals.toml).
    Column("outcome_flagged", JSON),
    Index("ix_consultations_target_status", "target_org", "status"),
)

# A child-welfare notification (lastensuojelulaki 417/2007 25 §) is a consultation of purpose
# ls.notification; this row records who notified (an official's notification is not anonymous)
# and the policy decision it was sent under, as it stood then.
child_welfare_notifications = Table(
    "child_welfare_notifications",
    metadata,
    Column("consultation_id", String(36), ForeignKey("consultations.id"), primary_key=True),
    Column("notifier_id", String(128), nullable=False),
    Column("notifier_name", String(200), nullable=False),
    Column("notifier_org", String(64), nullable=False),
    Column("notifier_role", String(32), nullable=False),
    Column("rule_id", String(128), nullable=False),
    Column("basis", String(200), nullable=False),
    Column("citation", Text, nullable=False),
    Column("policy_version", String(64), nullable=False),
    Column("created_at", TS, nullable=False),
)

participants = Table(
    "participants",
    metadata,
    Column("consultation_id", String(36), ForeignKey("consultations.id"), nullable=False),
    Column("user_id", String(128), nullable=False),
    Column("org", String(64), nullable=False),
    Column("role", String(32), nullable=False),
    Column("added_by", String(128), nullable=False),
    Column("added_at", TS, nullable=False),
    PrimaryKeyConstraint("consultation_id", "user_id"),
    Index("ix_participants_user", "user_id"),
)

messages = Table(
    "messages",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("consultation_id", String(36), ForeignKey("consultations.id"), nullable=False),
    Column("author_id", String(128), nullable=False),
    Column("author_org", String(64), nullable=False),
    Column("author_role", String(32), nullable=False),
    Column("author_name", String(200), nullable=False),
    Column("text_sealed", LargeBinary, nullable=False),
    Column("text_spans", JSON),
    Column("created_at", TS, nullable=False),
    # Categories the free text looked like and the sender confirmed (policies/signals.toml).
    Column("flagged_categories", JSON),
    # What the sender was told was withheld from whom (JSON, sealed like the text): rules and
    # categories, never item values; NULL for messages sent before 0017_sent_withheld.
    Column("sent_policy_sealed", LargeBinary),
    Index("ix_messages_consultation_seq", "consultation_id", "seq"),
)

message_items = Table(
    "message_items",
    metadata,
    Column("message_id", String(36), ForeignKey("messages.id"), nullable=False),
    Column("idx", Integer, nullable=False),
    Column("category", String(64), nullable=False),
    Column("value_sealed", LargeBinary, nullable=False),
    Column("consent_id", String(36)),
    Column("attachment_id", String(36)),
    Column("referral_condition", String(40)),
    Column("referral_justification_sealed", LargeBinary),
    Column("value_spans", JSON),  # positions of identifiers in the value, decided per reader
    # Why the person's consent could not be obtained (sosiaalihuoltolaki 35 § 2 mom.); NULL on
    # items sent before 0013_consent asked for it.
    Column("referral_why_no_consent_sealed", LargeBinary),
    PrimaryKeyConstraint("message_id", "idx"),
)

read_markers = Table(
    "read_markers",
    metadata,
    Column("consultation_id", String(36), ForeignKey("consultations.id"), nullable=False),
    Column("user_id", String(128), nullable=False),
    Column("message_seq", Integer, nullable=False),
    Column("read_at", TS, nullable=False),
    PrimaryKeyConstraint("consultation_id", "user_id"),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("at", TS, nullable=False),
    Column("actor_id", String(128), nullable=False),
    Column("actor_org", String(64), nullable=False),
    Column("actor_role", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("consultation_id", String(36)),
    Column("message_id", String(36)),
    Column("client_ref", String(64)),
    Column("categories", JSON, nullable=False),
    Column("purpose", String(64)),
    Column("basis", String(200)),
    Column("rule_id", String(128)),
    Column("policy_version", String(64)),
    Column("outcome", String(16), nullable=False),
    Column("request_id", String(64)),
    Column("source", String(64)),
    Column("consent_id", String(36)),
    Column("consent_version", Integer),
    Column("subject_user", String(128)),
    Column("flags", JSON),
    # The Merkle log (docs/capabilities.md C5): a contiguous position from 0 and the RFC 9162 leaf hash of the
    # canonical entry (consult/audit/entry.py), which includes the position itself.
    Column("leaf_index", BigInteger, nullable=False),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    Column("entry_version", SmallInteger, nullable=False, server_default="1"),
    # For disclosures: the receiving organisation and role (privacy officers see their org's).
    Column("recipient_org", String(64)),
    Column("recipient_role", String(32)),
    # A written reason (break-glass, an access report beyond two years): its id and SHA-256.
    Column("reason_id", String(36)),
    Column("reason_digest", String(64)),
    # Entry version 2: the SHA-256 of the history row the act wrote (consult/audit/subjects.py).
    Column("subject_digest", String(64)),
    Index("ix_audit_client_at", "client_ref", "at"),
    Index("ix_audit_actor_at", "actor_id", "at"),
    Index("ix_audit_consultation", "consultation_id"),
    Index("ix_audit_leaf_index", "leaf_index", unique=True),
    Index("ix_audit_at", "at"),
    Index("ix_audit_actor_org_leaf", "actor_org", "leaf_index"),
    Index("ix_audit_recipient_org_leaf", "recipient_org", "leaf_index"),
    Index("ix_audit_action_at", "action", "at"),
)

audit_head = Table(
    "audit_head",
    metadata,
    # One row: the log's size. Updating it in each write transaction hands out leaf indices
    # without gaps, and its row lock orders concurrent writers on PostgreSQL.
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("tree_size", BigInteger, nullable=False),
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("origin", String(200), nullable=False),
    Column("verifier_key", String(300), nullable=False),
    Column("note", Text, nullable=False),
    Column("signed_at", TS, nullable=False),
    # Also appended to the checkpoint file outside the database (CONSULT_CHECKPOINT_FILE).
    Column("kept_in_file", Boolean, nullable=False, server_default="0"),
    Index("ix_audit_checkpoints_size", "tree_size"),
)

audit_reasons = Table(
    "audit_reasons",
    metadata,
    # Written reasons are kept beside the log, not in it: the entry commits to their digest, so a
    # changed reason is detected, and a reason can be shredded without breaking the log.
    Column("id", String(36), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("text", Text, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("at", TS, nullable=False),
    Column("actor_id", String(128), nullable=False),
    Column("actor_org", String(64), nullable=False),
)

attachments = Table(
    "attachments",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("consultation_id", String(36), ForeignKey("consultations.id"), nullable=False, index=True),
    Column("message_id", String(36), nullable=False),
    Column("uploaded_by", String(128), nullable=False),
    Column("content_type", String(64), nullable=False),
    Column("size", Integer, nullable=False),
    Column("filename_sealed", LargeBinary, nullable=False),
    Column("content_sealed", LargeBinary, nullable=False),
    Column("created_at", TS, nullable=False),
)

# -- clients, consents and prohibitions (docs/capabilities.md C3) ----------------------------------

data_keys = Table(
    "data_keys",
    metadata,
    Column("owner", String(80), primary_key=True),
    Column("kek_version", Integer),
    Column("wrapped", LargeBinary),
    Column("created_at", TS, nullable=False),
    Column("destroyed_at", TS),
)

clients = Table(
    "clients",
    metadata,
    Column("client_ref", String(40), primary_key=True),
    Column("hetu_index", String(64), nullable=False, unique=True),
    Column("hetu_sealed", LargeBinary, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("created_org", String(64), nullable=False),
    # The form the blind index was computed under: 1 as typed (before migration 0008_hetu),
    # 2 the canonical form (consult/model/hetu.py). `consult clients merge-duplicates` moves
    # every row to 2.
    Column("hetu_form", SmallInteger, nullable=False, server_default="1"),
)

client_merges = Table(
    "client_merges",
    metadata,
    # A duplicate client merged into the one that survives: its consultations, consents and
    # prohibitions now point to ``into_ref``; the audit records under ``merged_ref`` stay as
    # written and are read with the survivor's.
    Column("merged_ref", String(40), primary_key=True),
    Column("into_ref", String(40), nullable=False, index=True),
    Column("merged_at", TS, nullable=False),
    Column("links_repointed_at", TS),  # "[client:<merged_ref>]" links in sealed texts rewritten
)

consents = Table(
    "consents",
    metadata,
    Column("id", String(36), nullable=False),
    Column("version", Integer, nullable=False),
    Column("client_ref", String(40), ForeignKey("clients.client_ref"), nullable=False),
    Column("grantor", String(32), nullable=False),
    Column("categories", JSON, nullable=False),
    Column("recipient_orgs", JSON, nullable=False),
    Column("recipient_roles", JSON, nullable=False),
    Column("recipient_users", JSON, nullable=False),
    Column("purposes", JSON, nullable=False),
    Column("valid_from", TS, nullable=False),
    Column("valid_until", TS),
    Column("method", String(32), nullable=False),
    Column("evidence_ref", String(200)),
    Column("recorded_by", String(128), nullable=False),
    Column("recorded_org", String(64), nullable=False),
    # The organisation whose disclosure the consent waives secrecy for (NULL only on consents
    # recorded before 0013_consent that did not make it clear), and who witnessed an oral one.
    Column("disclosing_org", String(64)),
    Column("witnessed_by", String(200)),
    Column("status", String(16), nullable=False),
    Column("status_changed_at", TS, nullable=False),
    Column("created_at", TS, nullable=False),
    PrimaryKeyConstraint("id", "version"),
    Index("ix_consents_client", "client_ref"),
)

consent_events = Table(
    "consent_events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("consent_id", String(36), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("event", String(32), nullable=False),
    Column("at", TS, nullable=False),
    Column("actor_id", String(128), nullable=False),
    Column("actor_org", String(64), nullable=False),
)

prohibitions = Table(
    "prohibitions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("client_ref", String(40), ForeignKey("clients.client_ref"), nullable=False, index=True),
    Column("category", String(64)),
    Column("org", String(64)),
    Column("created_at", TS, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("created_org", String(64), nullable=False),
    Column("revoked_at", TS),
    Column("revoked_by", String(128)),
)

# -- agreements, pools, roster, routing and the knowledge base (docs/capabilities.md C6a, C6, C1, C9) ---

agreements = Table(
    "agreements",
    metadata,
    # Which organisations may consult each other (docs/capabilities.md C6a); the parties are unordered, kept sorted.
    Column("id", String(36), primary_key=True),
    Column("reference", String(200), nullable=False),
    Column("org_a", String(64), nullable=False),
    Column("org_b", String(64), nullable=False),
    Column("valid_from", TS, nullable=False),
    Column("valid_until", TS),
    Column("topics", JSON, nullable=False),  # [] = every topic
    Column("pools", JSON, nullable=False),  # [] = every pool
    Column("version", Integer, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("updated_by", String(128), nullable=False),
    Index("ix_agreements_orgs", "org_a", "org_b"),
)

agreement_versions = Table(
    "agreement_versions",
    metadata,
    # Every version of every agreement as it was, with who changed it and when.
    Column("agreement_id", String(36), nullable=False),
    Column("version", Integer, nullable=False),
    Column("snapshot", JSON, nullable=False),
    Column("at", TS, nullable=False),
    Column("actor_id", String(128), nullable=False),
    Column("actor_org", String(64), nullable=False),
    PrimaryKeyConstraint("agreement_id", "version"),
)

routing_pools = Table(
    "routing_pools",
    metadata,
    Column("org", String(64), nullable=False),
    Column("name", String(64), nullable=False),
    Column("sla_immediate_s", Integer, nullable=False),
    Column("sla_today_s", Integer, nullable=False),
    Column("sla_normal_s", Integer, nullable=False),
    Column("reoffers", SmallInteger, nullable=False),  # re-offers before escalating
    Column("backup_pool", String(64)),
    Column("max_open_per_expert", SmallInteger, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("updated_by", String(128), nullable=False),
    PrimaryKeyConstraint("org", "name"),
)

roster_periods = Table(
    "roster_periods",
    metadata,
    # An on-duty period of one named expert, in UTC; shown in Europe/Helsinki time.
    Column("id", String(36), primary_key=True),
    Column("user_id", String(128), nullable=False),
    Column("org", String(64), nullable=False),
    Column("starts_at", TS, nullable=False),
    Column("ends_at", TS, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("created_by", String(128), nullable=False),
    Index("ix_roster_periods_user_start", "user_id", "starts_at"),
    Index("ix_roster_periods_org_end", "org", "ends_at"),
)

roster_rules = Table(
    "roster_rules",
    metadata,
    # A weekly recurring on-duty time in Helsinki local time; not applied on public holidays.
    Column("id", String(36), primary_key=True),
    Column("user_id", String(128), nullable=False, index=True),
    Column("org", String(64), nullable=False, index=True),
    Column("weekday", SmallInteger, nullable=False),  # ISO: 1 = Monday
    Column("start_time", String(5), nullable=False),  # HH:MM
    Column("end_time", String(5), nullable=False),
    Column("valid_from", Date),
    Column("valid_until", Date),
    Column("created_at", TS, nullable=False),
    Column("created_by", String(128), nullable=False),
)

roster_sync = Table(
    "roster_sync",
    metadata,
    # One row: the instant up to which roster changes of state have been applied to experts.on_duty.
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("synced_at", TS, nullable=False),
)

consultation_routing = Table(
    "consultation_routing",
    metadata,
    # The routing of one consultation: its SLA (kept as it was when opened) and escalation steps.
    Column("consultation_id", String(36), ForeignKey("consultations.id"), primary_key=True),
    Column("org", String(64), nullable=False),
    Column("pool", String(64)),
    Column("urgency", String(16), nullable=False),
    Column("sla_seconds", Integer, nullable=False),
    Column("stage", String(16), nullable=False),  # offered, reoffered, escalated, claimed, closed
    Column("offers", Integer, nullable=False),
    Column("escalations", Integer, nullable=False),
    Column("first_offered_to", Integer, nullable=False),
    Column("next_at", TS),  # when the next step is due while unclaimed
    Column("escalated_at", TS),
    Column("created_at", TS, nullable=False),
    Index("ix_consultation_routing_next", "next_at"),
)

knowledge_entries = Table(
    "knowledge_entries",
    metadata,
    # Anonymised question-and-answer entries (docs/capabilities.md C9). Checked to hold no personal data, so kept
    # in clear for full-text search (kb_search: an SQLite FTS5 table or PostgreSQL GIN indexes).
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("org", String(64), nullable=False),
    Column("topic", String(64), nullable=False),
    Column("question", Text, nullable=False),
    Column("answer", Text, nullable=False),
    Column("search_text", Text, nullable=False),
    Column("status", String(16), nullable=False),  # draft, approved, withdrawn
    Column("source_consultation_id", String(36)),
    Column("created_by", String(128), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("approved_by", String(128)),
    Column("approved_at", TS),
    Column("withdrawn_at", TS),
    Index("ix_knowledge_status_topic", "status", "topic"),
)

# -- the deployment's identity: which keys this database was written with ----------------------

deployment = Table(
    "deployment",
    metadata,
    # One row (id 1): the audit origin (from CONSULT_DEPLOYMENT) and the fingerprints of the audit
    # signing key and the blind-index key. Start-up refuses keys that do not match.
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("origin", String(200), nullable=False),
    Column("audit_key_fingerprint", String(64), nullable=False),
    Column("audit_verifier_key", String(300), nullable=False),
    Column("blind_index_fingerprint", String(64), nullable=False),
    Column("bound", String(16), nullable=False),  # created (empty database) or adopted (older data)
    Column("recorded_at", TS, nullable=False),
)

deployment_keks = Table(
    "deployment_keks",
    metadata,
    # Every key-encryption-key version ever used with this database: its fingerprint and status
    # (pending while a rotation is writing it, active, retired, removed).
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("fingerprint", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("recorded_at", TS, nullable=False),
    Column("changed_at", TS),
)

# Full-text structures SQLAlchemy cannot describe (the FTS5 virtual table and its shadow tables,
# PostgreSQL expression indexes) are named with this prefix; migrations create them and schema
# comparison leaves them out.
SEARCH_PREFIX = "kb_search"


def described(name: str | None, _type: str, _parent_names: object) -> bool:
    """Alembic ``include_name`` hook (called positionally): everything but the full-text structures."""
    return not (name or "").startswith(SEARCH_PREFIX)


session_ends = Table(
    "session_ends",
    metadata,
    # The latest moment an administrator ended a user's sessions: tokens of that user in that
    # organisation issued at or before it are refused (consult/services/sessions.py).
    Column("org", String(64), primary_key=True),
    Column("user_id", String(128), primary_key=True),
    Column("ended_at", TS, nullable=False),
    Column("ended_by", String(128), nullable=False),
)

live_events = Table(
    "live_events",
    metadata,
    # One live event for one recipient, as that reader may see it, sealed under the consultation's
    # data key (consult/services/live.py). The id orders events over the whole service; on SQLite
    # AUTOINCREMENT keeps an id from ever being handed out twice after pruning.
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("user_id", String(128), nullable=False),
    Column("consultation_id", String(36), nullable=False),
    Column("ref", String(32), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("payload_sealed", LargeBinary, nullable=False),
    Index("ix_live_events_user_id", "user_id", "id"),
    Index("ix_live_events_created_at", "created_at"),
    sqlite_autoincrement=True,
)

live_event_horizon = Table(
    "live_event_horizon",
    metadata,
    # One row: the newest event id removed by pruning (a replay from before it is incomplete).
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("pruned_through", BigInteger, nullable=False),
)

presence = Table(
    "presence",
    metadata,
    # One row per (server instance, user) while the user has a live connection to that instance;
    # the instance's heartbeat renews expires_at, so the rows of an instance that died stop
    # counting at expiry (consult/services/presence.py).
    Column("instance_id", String(64), primary_key=True),
    Column("user_id", String(128), primary_key=True),
    Column("since", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
)

job_leases = Table(
    "job_leases",
    metadata,
    # Which instance runs a periodic job, until when; a new holder bumps the term
    # (consult/services/leases.py).
    Column("name", String(64), primary_key=True),
    Column("holder", String(64), nullable=False),
    Column("term", BigInteger, nullable=False),
    Column("acquired_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
)
