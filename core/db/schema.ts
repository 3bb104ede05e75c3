/**
 * The Postgres schema: the source of truth for venues, events and sales.
 *
 * Double selling is impossible at this level, whatever the application does:
 * one live ticket per event seat (partial unique index), one order per hold,
 * one payment per idempotency key, and general-admission counters that cannot
 * go above capacity (check constraints).
 */
import { sql } from "drizzle-orm";
import {
  type AnyPgColumn,
  bigint,
  check,
  index,
  integer,
  jsonb,
  boolean,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from "drizzle-orm/pg-core";

const createdAt = () => timestamp("created_at", { withTimezone: true }).notNull().defaultNow();
const updatedAt = () => timestamp("updated_at", { withTimezone: true }).notNull().defaultNow();
/** A required reference to `target`'s row, deleted with it. */
const ownedBy = (column: string, target: () => AnyPgColumn) => uuid(column).notNull().references(target, { onDelete: "cascade" });
/** A required reference to `target`'s row, which cannot be deleted while this one refers to it. */
const refersTo = (column: string, target: () => AnyPgColumn) => uuid(column).notNull().references(target);

/** A company that runs events; the unit every admin route is scoped to. */
export const organizers = pgTable("organizers", {
  id: uuid("id").primaryKey().defaultRandom(),
  name: text("name").notNull(),
  createdAt: createdAt(),
});

/** Organizer API keys, stored as SHA-256 hashes of high-entropy secrets. */
export const organizerApiKeys = pgTable(
  "organizer_api_keys",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    organizerId: ownedBy("organizer_id", () => organizers.id),
    keyHash: text("key_hash").notNull(),
    /** The key's name, shown in the key list and the audit log. */
    label: text("label").notNull(),
    /** `admin` (everything), `read` (every GET) or `check_in` (the door); keys made before scopes are `admin`. */
    scope: text("scope").notNull().default("admin"),
    createdAt: createdAt(),
    /** After this the key is refused (401); null never expires. */
    expiresAt: timestamp("expires_at", { withTimezone: true }),
    revokedAt: timestamp("revoked_at", { withTimezone: true }),
  },
  (t) => [
    uniqueIndex("organizer_api_keys_key_hash_key").on(t.keyHash),
    index("organizer_api_keys_organizer_idx").on(t.organizerId),
    check("organizer_api_keys_scope_check", sql`${t.scope} in ('admin', 'read', 'check_in')`),
  ],
);

/**
 * Every organizer write through the admin API: who (the key, by id and by its
 * name then), what (the route and its target), when, and the target before and
 * after (JSON, secrets left out). Append-only.
 */
export const organizerAuditLog = pgTable(
  "organizer_audit_log",
  {
    /** Increasing: the list's order and its page cursor. */
    id: bigint("id", { mode: "number" }).primaryKey().generatedAlwaysAsIdentity(),
    organizerId: ownedBy("organizer_id", () => organizers.id),
    apiKeyId: uuid("api_key_id").notNull(),
    apiKeyName: text("api_key_name").notNull(),
    /** The route, as the admin OpenAPI document names it: `PATCH /events/{id}`. */
    action: text("action").notNull(),
    /** The id of what the route changed (an event, venue, order or key). */
    targetId: text("target_id"),
    /** The event concerned, when there is one, for filtering by event. */
    eventId: uuid("event_id"),
    before: jsonb("before"),
    after: jsonb("after"),
    createdAt: createdAt(),
  },
  (t) => [
    index("organizer_audit_log_organizer_idx").on(t.organizerId, t.id),
    index("organizer_audit_log_event_idx").on(t.organizerId, t.eventId, t.id),
  ],
);

/** A place with a seating chart. */
export const venues = pgTable(
  "venues",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    organizerId: ownedBy("organizer_id", () => organizers.id),
    name: text("name").notNull(),
    city: text("city"),
    timezone: text("timezone").notNull().default("UTC"),
    /** Seats plus general-admission places. */
    capacity: integer("capacity").notNull(),
    seatCount: integer("seat_count").notNull(),
    createdAt: createdAt(),
  },
  (t) => [index("venues_organizer_idx").on(t.organizerId), check("venues_capacity_positive", sql`${t.capacity} > 0`)],
);

/** A section of a venue: seated (rows of seats) or general admission (a counter). */
export const sections = pgTable(
  "sections",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    venueId: ownedBy("venue_id", () => venues.id),
    label: text("label").notNull(),
    name: text("name").notNull(),
    /** Position in the chart; also the first key of the best-available order. */
    sortOrder: integer("sort_order").notNull(),
    kind: text("kind", { enum: ["seated", "general_admission"] }).notNull(),
    /** Price tier for the whole section; rows may override it. */
    priceTier: text("price_tier"),
    /** Places in a general-admission section; null when seated. */
    gaCapacity: integer("ga_capacity"),
  },
  (t) => [
    uniqueIndex("sections_venue_label_key").on(t.venueId, t.label),
    check("sections_kind_capacity", sql`(${t.kind} = 'seated') = (${t.gaCapacity} is null)`),
    check("sections_ga_capacity_positive", sql`${t.gaCapacity} is null or ${t.gaCapacity} > 0`),
  ],
);

/** A row of seats within a seated section. */
export const seatRows = pgTable(
  "seat_rows",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    sectionId: ownedBy("section_id", () => sections.id),
    label: text("label").notNull(),
    sortOrder: integer("sort_order").notNull(),
    priceTier: text("price_tier").notNull(),
  },
  (t) => [uniqueIndex("seat_rows_section_label_key").on(t.sectionId, t.label)],
);

/**
 * One physical seat. `seat_index` numbers a venue's seats 0..n-1: it is the bit
 * in availability bitmaps and the key of an event seat. `best_rank` orders
 * seats for best-available assignment (lower is better).
 */
export const seats = pgTable(
  "seats",
  {
    venueId: ownedBy("venue_id", () => venues.id),
    seatIndex: integer("seat_index").notNull(),
    sectionId: ownedBy("section_id", () => sections.id),
    rowId: ownedBy("row_id", () => seatRows.id),
    label: text("label").notNull(),
    /** Position within the row, for adjacency. */
    position: integer("position").notNull(),
    bestRank: integer("best_rank").notNull(),
    priceTier: text("price_tier").notNull(),
  },
  (t) => [
    primaryKey({ name: "seats_pkey", columns: [t.venueId, t.seatIndex] }),
    uniqueIndex("seats_row_label_key").on(t.rowId, t.label),
    uniqueIndex("seats_row_position_key").on(t.rowId, t.position),
    index("seats_best_rank_idx").on(t.venueId, t.bestRank),
    check("seats_index_nonnegative", sql`${t.seatIndex} >= 0`),
  ],
);

/** An event at a venue, with its sale settings. */
export const events = pgTable(
  "events",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    organizerId: ownedBy("organizer_id", () => organizers.id),
    venueId: refersTo("venue_id", () => venues.id),
    name: text("name").notNull(),
    description: text("description").notNull().default(""),
    startsAt: timestamp("starts_at", { withTimezone: true }).notNull(),
    endsAt: timestamp("ends_at", { withTimezone: true }),
    saleStartsAt: timestamp("sale_starts_at", { withTimezone: true }).notNull(),
    saleEndsAt: timestamp("sale_ends_at", { withTimezone: true }),
    /** How long before the sale the waiting-room lobby opens. */
    lobbyOpensMinutes: integer("lobby_opens_minutes").notNull().default(30),
    holdTtlSeconds: integer("hold_ttl_seconds").notNull().default(600),
    /** Seconds a fan may retry with another card after a decline; 0 releases at once. */
    declineRetrySeconds: integer("decline_retry_seconds").notNull().default(120),
    purchaseLimit: integer("purchase_limit").notNull().default(4),
    currency: text("currency").notNull().default("USD"),
    /** Pre-registrations or the organizer's estimate: the demand signal. */
    expectedDemand: integer("expected_demand").notNull().default(0),
    /** Seed "Deep Dive 1": calm (< 5x capacity) or hot (>= 5x). */
    demandClass: text("demand_class", { enum: ["calm", "hot"] }).notNull().default("calm"),
    status: text("status", { enum: ["draft", "published", "cancelled"] }).notNull().default("draft"),
    /** Fans the waiting room admits per second (hot events); operators change it live. */
    admissionRatePerSecond: integer("admission_rate_per_second").notNull().default(500),
    /** What the lobby does with accounts sharing a device or IP beyond the limits below. */
    botPolicy: text("bot_policy", { enum: ["deprioritize", "refuse"] }).notNull().default("deprioritize"),
    maxAccountsPerDevice: integer("max_accounts_per_device").notNull().default(3),
    maxAccountsPerIp: integer("max_accounts_per_ip").notNull().default(50),
    /** When the hot inventory was loaded into its Durable Object. */
    inventoryPreparedAt: timestamp("inventory_prepared_at", { withTimezone: true }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    index("events_organizer_idx").on(t.organizerId),
    index("events_public_idx").on(t.status, t.startsAt),
    check("events_hold_ttl_range", sql`${t.holdTtlSeconds} between 60 and 3600`),
    check("events_purchase_limit_range", sql`${t.purchaseLimit} between 1 and 50`),
    check("events_decline_retry_range", sql`${t.declineRetrySeconds} between 0 and 600`),
    check("events_lobby_range", sql`${t.lobbyOpensMinutes} between 0 and 1440`),
    check("events_expected_demand_nonnegative", sql`${t.expectedDemand} >= 0`),
    check("events_admission_rate_positive", sql`${t.admissionRatePerSecond} > 0`),
    check("events_bot_limits_positive", sql`${t.maxAccountsPerDevice} > 0 and ${t.maxAccountsPerIp} > 0`),
    check("events_sale_before_start", sql`${t.saleStartsAt} <= ${t.startsAt}`),
    check("events_currency_format", sql`${t.currency} ~ '^[A-Z]{3}$'`),
  ],
);

/** The price of each of the venue's price tiers at one event. */
export const eventPriceTiers = pgTable(
  "event_price_tiers",
  {
    eventId: ownedBy("event_id", () => events.id),
    priceTier: text("price_tier").notNull(),
    priceCents: integer("price_cents").notNull(),
  },
  (t) => [
    primaryKey({ name: "event_price_tiers_pkey", columns: [t.eventId, t.priceTier] }),
    check("event_price_tiers_price_nonnegative", sql`${t.priceCents} >= 0`),
  ],
);

/** Fans: the unit of every purchase limit. */
export const accounts = pgTable(
  "accounts",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    email: text("email").notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("accounts_email_key").on(sql`lower(${t.email})`)],
);

/**
 * A time-limited claim on seats by one account (the seed's "reservation").
 * A live hold past `expires_at` counts as expired everywhere, with no sweep.
 */
export const holds = pgTable(
  "holds",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    eventId: ownedBy("event_id", () => events.id),
    accountId: refersTo("account_id", () => accounts.id),
    status: text("status", { enum: ["live", "confirmed", "released", "expired"] }).notNull().default("live"),
    /** The caller's request id: a retried request returns the first result. */
    clientRequestId: text("client_request_id").notNull(),
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
    /** Set when the hold is a waitlist offer. */
    waitlistEntryId: uuid("waitlist_entry_id"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("holds_client_request_key").on(t.eventId, t.accountId, t.clientRequestId),
    index("holds_account_idx").on(t.eventId, t.accountId, t.status),
    index("holds_live_expiry_idx").on(t.expiresAt).where(sql`${t.status} = 'live'`),
  ],
);

/** What a hold claims: a seat, or a quantity in a general-admission section. */
export const holdItems = pgTable(
  "hold_items",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    holdId: ownedBy("hold_id", () => holds.id),
    eventId: uuid("event_id").notNull(),
    seatIndex: integer("seat_index"),
    sectionId: refersTo("section_id", () => sections.id),
    quantity: integer("quantity").notNull().default(1),
    priceCents: integer("price_cents").notNull(),
  },
  (t) => [
    uniqueIndex("hold_items_seat_key").on(t.holdId, t.seatIndex),
    index("hold_items_event_seat_idx").on(t.eventId, t.seatIndex),
    check("hold_items_quantity_positive", sql`${t.quantity} > 0`),
    check("hold_items_seat_single", sql`${t.seatIndex} is null or ${t.quantity} = 1`),
  ],
);

/**
 * Per-seat state of an event (rows created with the event). Calm events hold
 * seats here with optimistic locking on `version`; for hot events it is the
 * snapshot the inventory Durable Object is loaded from and rebuilt from.
 */
export const eventSeats = pgTable(
  "event_seats",
  {
    eventId: ownedBy("event_id", () => events.id),
    seatIndex: integer("seat_index").notNull(),
    status: text("status", { enum: ["available", "held", "sold", "blocked"] }).notNull().default("available"),
    version: integer("version").notNull().default(0),
    holdId: uuid("hold_id").references(() => holds.id, { onDelete: "set null" }),
    heldUntil: timestamp("held_until", { withTimezone: true }),
  },
  (t) => [
    primaryKey({ name: "event_seats_pkey", columns: [t.eventId, t.seatIndex] }),
    check("event_seats_held_has_hold", sql`${t.status} <> 'held' or (${t.holdId} is not null and ${t.heldUntil} is not null)`),
  ],
);

/** General-admission inventory of an event: counters that cannot oversell. */
export const eventGaSections = pgTable(
  "event_ga_sections",
  {
    eventId: ownedBy("event_id", () => events.id),
    sectionId: refersTo("section_id", () => sections.id),
    capacity: integer("capacity").notNull(),
    sold: integer("sold").notNull().default(0),
    version: integer("version").notNull().default(0),
  },
  (t) => [
    primaryKey({ name: "event_ga_sections_pkey", columns: [t.eventId, t.sectionId] }),
    check("event_ga_sections_sold_range", sql`${t.sold} >= 0 and ${t.sold} <= ${t.capacity}`),
  ],
);

/** What a paid hold becomes. One order per hold, so confirmation is idempotent. */
export const orders = pgTable(
  "orders",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    eventId: refersTo("event_id", () => events.id),
    accountId: refersTo("account_id", () => accounts.id),
    holdId: uuid("hold_id").notNull(),
    /** `refunded`: in full, by the organizer or at the gateway; `disputed`: the cardholder's bank disputed the charge (tickets void). */
    status: text("status", { enum: ["confirmed", "refunded", "cancelled", "disputed"] }).notNull().default("confirmed"),
    totalCents: integer("total_cents").notNull(),
    currency: text("currency").notNull(),
    /** Refunded so far (the gateway's `amount_refunded`); below `totalCents` a partial refund, which leaves the tickets valid. */
    refundedCents: integer("refunded_cents").notNull().default(0),
    /** The dispute's reason and status as the gateway last told them (null: never disputed). */
    disputeReason: text("dispute_reason"),
    disputeStatus: text("dispute_status"),
    /** When ticket delivery was queued (null: not yet; a redelivered sale queues it then). */
    deliveryQueuedAt: timestamp("delivery_queued_at", { withTimezone: true }),
    /** When the delivery consumer was done with the order: its tickets emailed, or nothing left to send (null: not yet). */
    deliveredAt: timestamp("delivered_at", { withTimezone: true }),
    /** When the queue retries a delivery that failed (null: none pending); the cron's sweep leaves the order alone until then. */
    deliveryRetryAt: timestamp("delivery_retry_at", { withTimezone: true }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("orders_hold_key").on(t.holdId),
    index("orders_account_idx").on(t.accountId, t.eventId),
    // The cron's sweep for deliveries that were queued and never done (workers/tickets/delivery.ts).
    index("orders_undelivered_idx").on(t.deliveryQueuedAt).where(sql`${t.deliveredAt} is null and ${t.deliveryQueuedAt} is not null`),
  ],
);

/** One sold event seat (or general-admission place) with its signed QR token. */
export const tickets = pgTable(
  "tickets",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    orderId: refersTo("order_id", () => orders.id),
    eventId: refersTo("event_id", () => events.id),
    accountId: refersTo("account_id", () => accounts.id),
    /** Null for general admission. */
    seatIndex: integer("seat_index"),
    sectionId: refersTo("section_id", () => sections.id),
    priceCents: integer("price_cents").notNull(),
    status: text("status", { enum: ["valid", "checked_in", "void"] }).notNull().default("valid"),
    checkedInAt: timestamp("checked_in_at", { withTimezone: true }),
    /** The door that checked the ticket in, when it said (the door scanner's sync); null for a scan that named none. */
    checkedInDoor: text("checked_in_door"),
    createdAt: createdAt(),
  },
  (t) => [
    // The last line of defence against double selling: one live ticket per event seat.
    uniqueIndex("tickets_one_live_per_seat").on(t.eventId, t.seatIndex).where(sql`${t.status} <> 'void' and ${t.seatIndex} is not null`),
    index("tickets_order_idx").on(t.orderId),
    index("tickets_account_idx").on(t.accountId, t.eventId),
  ],
);

/** A charge attempt at the payment gateway. */
export const payments = pgTable(
  "payments",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    holdId: uuid("hold_id").notNull(),
    orderId: uuid("order_id").references(() => orders.id),
    eventId: uuid("event_id").notNull(),
    accountId: uuid("account_id").notNull(),
    provider: text("provider").notNull().default("stripe"),
    /** The gateway's id (a PaymentIntent id), stored before the intent is confirmed; unknown until the create call answers. */
    providerPaymentId: text("provider_payment_id"),
    /** Derived from the hold and attempt: a retry can never charge twice. */
    idempotencyKey: text("idempotency_key").notNull(),
    /** The gateway payment method used, so a retry can resend the identical request. */
    paymentMethod: text("payment_method"),
    attempt: integer("attempt").notNull().default(1),
    amountCents: integer("amount_cents").notNull(),
    currency: text("currency").notNull(),
    /** `requires_action`: confirmed, waiting on the fan's 3-D Secure challenge while the hold lives. */
    status: text("status", { enum: ["pending", "unknown", "requires_action", "succeeded", "failed", "canceled", "refunded"] })
      .notNull()
      .default("pending"),
    /** Tries at settling this attempt: the payment request's, then one per reconciliation pass (the seed's "3 retries"). */
    gatewayCalls: integer("gateway_calls").notNull().default(0),
    lastError: text("last_error"),
    /**
     * When a payment paid after its seats were gone was first sent to the gateway to be refunded
     * (written before the call). From then on it is never confirmed: every later pass asks for the
     * refund again with the same key, even once the seats are free.
     */
    refundRequestedAt: timestamp("refund_requested_at", { withTimezone: true }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("payments_idempotency_key").on(t.idempotencyKey),
    uniqueIndex("payments_provider_id_key").on(t.provider, t.providerPaymentId),
    index("payments_hold_idx").on(t.holdId),
    index("payments_open_idx").on(t.updatedAt).where(sql`${t.status} in ('pending', 'unknown')`),
    check("payments_amount_nonnegative", sql`${t.amountCents} >= 0`),
  ],
);

/** Fans waiting for returned seats of a sold-out event or price tier. */
export const waitlistEntries = pgTable(
  "waitlist_entries",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    eventId: ownedBy("event_id", () => events.id),
    accountId: refersTo("account_id", () => accounts.id),
    quantity: integer("quantity").notNull(),
    priceTier: text("price_tier"),
    status: text("status", { enum: ["waiting", "offered", "fulfilled", "expired", "cancelled"] }).notNull().default("waiting"),
    /** Order of service: first come, first offered. */
    position: bigint("position", { mode: "number" }).generatedAlwaysAsIdentity(),
    offerHoldId: uuid("offer_hold_id"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("waitlist_one_open_entry").on(t.eventId, t.accountId).where(sql`${t.status} in ('waiting', 'offered')`),
    index("waitlist_queue_idx").on(t.eventId, t.position).where(sql`${t.status} = 'waiting'`),
    check("waitlist_quantity_range", sql`${t.quantity} between 1 and 4`),
  ],
);

/** Fans who registered interest before the sale: the demand signal for classification. */
export const preRegistrations = pgTable(
  "pre_registrations",
  {
    eventId: ownedBy("event_id", () => events.id),
    accountId: refersTo("account_id", () => accounts.id),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ name: "pre_registrations_pkey", columns: [t.eventId, t.accountId] })],
);

/**
 * The last hold attempt per attempt key at a calm event (one per 5 s), so the
 * limit holds across every Worker. Hot events keep theirs in the Durable Object.
 */
export const inventoryAttempts = pgTable(
  "inventory_attempts",
  {
    eventId: ownedBy("event_id", () => events.id),
    attemptKey: text("attempt_key").notNull(),
    lastAt: timestamp("last_at", { withTimezone: true }).notNull(),
  },
  (t) => [primaryKey({ name: "inventory_attempts_pkey", columns: [t.eventId, t.attemptKey] })],
);

/**
 * The first outcome of each hold request at a calm event (a hold id or a
 * refusal), so a retried request gets the same answer.
 */
export const inventoryRequests = pgTable(
  "inventory_requests",
  {
    eventId: ownedBy("event_id", () => events.id),
    accountId: uuid("account_id").notNull(),
    requestId: text("request_id").notNull(),
    result: jsonb("result").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
  },
  (t) => [primaryKey({ name: "inventory_requests_pkey", columns: [t.eventId, t.accountId, t.requestId] })],
);

/** Lobby accounts flagged as likely bots (shared device or IP), visible to the organizer. */
export const botFlags = pgTable(
  "bot_flags",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    eventId: ownedBy("event_id", () => events.id),
    accountId: refersTo("account_id", () => accounts.id),
    reason: text("reason").notNull(),
    detail: jsonb("detail").notNull().default({}),
    /** True when the policy moved the account behind everyone; false when it was refused. */
    deprioritized: boolean("deprioritized").notNull(),
    /** The organizer's decision on the account (every flag of it at the event carries it): null until one is made. */
    decision: text("decision", { enum: ["clear", "confirm"] }),
    decidedAt: timestamp("decided_at", { withTimezone: true }),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("bot_flags_event_account_reason_key").on(t.eventId, t.accountId, t.reason), index("bot_flags_event_idx").on(t.eventId, t.createdAt)],
);

/** Queue messages that exhausted their retries, kept for inspection and `npm run dlq:replay`. */
export const deadLetters = pgTable(
  "dead_letters",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    queue: text("queue").notNull(),
    /** The original message id, so a dead letter is stored once. */
    messageId: text("message_id").notNull(),
    body: jsonb("body").notNull(),
    createdAt: createdAt(),
    replayedAt: timestamp("replayed_at", { withTimezone: true }),
  },
  (t) => [uniqueIndex("dead_letters_message_key").on(t.queue, t.messageId), index("dead_letters_pending_idx").on(t.createdAt).where(sql`${t.replayedAt} is null`)],
);

/**
 * The admission history behind the organizer's live charts: one row per hot
 * event and minute, the room's cumulative admitted count and settings as last
 * sampled in that minute (by the every-minute cron and by each live read).
 * Bounded: rows older than the live view's window are deleted as new ones come.
 */
export const admissionSamples = pgTable(
  "admission_samples",
  {
    eventId: ownedBy("event_id", () => events.id),
    minute: timestamp("minute", { withTimezone: true }).notNull(),
    admitted: integer("admitted").notNull(),
    ratePerSecond: integer("rate_per_second").notNull(),
    paused: boolean("paused").notNull(),
  },
  (t) => [primaryKey({ name: "admission_samples_pkey", columns: [t.eventId, t.minute] })],
);

/** The organizer event types a webhook endpoint can subscribe to. */
export const WEBHOOK_EVENT_TYPES = ["order.created", "order.refunded", "ticket.checked_in", "event.sold_out", "event.cancelled"] as const;

/** An organizer's webhook endpoint: a URL, the event types it wants, and its signing secret (a rotated-out one signs too until its grace ends). */
export const webhookEndpoints = pgTable(
  "webhook_endpoints",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    organizerId: ownedBy("organizer_id", () => organizers.id),
    url: text("url").notNull(),
    eventTypes: text("event_types").array().notNull(),
    /** Only this event's notifications (null: every event of the organizer). */
    eventId: uuid("event_id").references(() => events.id, { onDelete: "cascade" }),
    description: text("description").notNull().default(""),
    /** `whsec_` + base64 of 32 random bytes: the key must be readable to sign with it. */
    secret: text("secret").notNull(),
    previousSecret: text("previous_secret"),
    previousSecretExpiresAt: timestamp("previous_secret_expires_at", { withTimezone: true }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index("webhook_endpoints_organizer_idx").on(t.organizerId)],
);

/** One notification for one endpoint; `webhookId` comes from the source row, so a source emitted twice is delivered once. */
export const webhookDeliveries = pgTable(
  "webhook_deliveries",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    endpointId: ownedBy("endpoint_id", () => webhookEndpoints.id),
    /** The Standard Webhooks `webhook-id`: the same on every attempt and resend. */
    webhookId: text("webhook_id").notNull(),
    eventType: text("event_type").notNull(),
    /** The exact body every attempt sends. */
    payload: jsonb("payload").notNull(),
    status: text("status", { enum: ["pending", "delivered", "dead"] }).notNull().default("pending"),
    attempts: integer("attempts").notNull().default(0),
    nextAttemptAt: timestamp("next_attempt_at", { withTimezone: true }),
    /** When its queue message was sent (null: not yet; emitting again sends it). */
    queuedAt: timestamp("queued_at", { withTimezone: true }),
    deliveredAt: timestamp("delivered_at", { withTimezone: true }),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("webhook_deliveries_endpoint_webhook_key").on(t.endpointId, t.webhookId), index("webhook_deliveries_endpoint_idx").on(t.endpointId, t.createdAt)],
);

/** One try of a delivery: when, the receiver's HTTP status (null: no answer), the start of its answer or the error. */
export const webhookAttempts = pgTable(
  "webhook_attempts",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    deliveryId: ownedBy("delivery_id", () => webhookDeliveries.id),
    attemptedAt: timestamp("attempted_at", { withTimezone: true }).notNull().defaultNow(),
    httpStatus: integer("http_status"),
    responseSnippet: text("response_snippet").notNull().default(""),
    error: text("error"),
    durationMs: integer("duration_ms").notNull(),
  },
  (t) => [index("webhook_attempts_delivery_idx").on(t.deliveryId, t.attemptedAt)],
);
