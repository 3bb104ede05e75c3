CREATE TABLE "accounts" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"email" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "event_ga_sections" (
	"event_id" uuid NOT NULL,
	"section_id" uuid NOT NULL,
	"capacity" integer NOT NULL,
	"sold" integer DEFAULT 0 NOT NULL,
	"version" integer DEFAULT 0 NOT NULL,
	CONSTRAINT "event_ga_sections_pkey" PRIMARY KEY("event_id","section_id"),
	CONSTRAINT "event_ga_sections_sold_range" CHECK ("event_ga_sections"."sold" >= 0 and "event_ga_sections"."sold" <= "event_ga_sections"."capacity")
);
--> statement-breakpoint
CREATE TABLE "event_price_tiers" (
	"event_id" uuid NOT NULL,
	"price_tier" text NOT NULL,
	"price_cents" integer NOT NULL,
	CONSTRAINT "event_price_tiers_pkey" PRIMARY KEY("event_id","price_tier"),
	CONSTRAINT "event_price_tiers_price_nonnegative" CHECK ("event_price_tiers"."price_cents" >= 0)
);
--> statement-breakpoint
CREATE TABLE "event_seats" (
	"event_id" uuid NOT NULL,
	"seat_index" integer NOT NULL,
	"status" text DEFAULT 'available' NOT NULL,
	"version" integer DEFAULT 0 NOT NULL,
	"hold_id" uuid,
	"held_until" timestamp with time zone,
	CONSTRAINT "event_seats_pkey" PRIMARY KEY("event_id","seat_index"),
	CONSTRAINT "event_seats_held_has_hold" CHECK ("event_seats"."status" <> 'held' or ("event_seats"."hold_id" is not null and "event_seats"."held_until" is not null))
);
--> statement-breakpoint
CREATE TABLE "events" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"organizer_id" uuid NOT NULL,
	"venue_id" uuid NOT NULL,
	"name" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"starts_at" timestamp with time zone NOT NULL,
	"ends_at" timestamp with time zone,
	"sale_starts_at" timestamp with time zone NOT NULL,
	"sale_ends_at" timestamp with time zone,
	"lobby_opens_minutes" integer DEFAULT 30 NOT NULL,
	"hold_ttl_seconds" integer DEFAULT 600 NOT NULL,
	"decline_retry_seconds" integer DEFAULT 120 NOT NULL,
	"purchase_limit" integer DEFAULT 4 NOT NULL,
	"currency" text DEFAULT 'USD' NOT NULL,
	"expected_demand" integer DEFAULT 0 NOT NULL,
	"demand_class" text DEFAULT 'calm' NOT NULL,
	"status" text DEFAULT 'draft' NOT NULL,
	"inventory_prepared_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "events_hold_ttl_range" CHECK ("events"."hold_ttl_seconds" between 60 and 3600),
	CONSTRAINT "events_purchase_limit_range" CHECK ("events"."purchase_limit" between 1 and 50),
	CONSTRAINT "events_decline_retry_range" CHECK ("events"."decline_retry_seconds" between 0 and 600),
	CONSTRAINT "events_lobby_range" CHECK ("events"."lobby_opens_minutes" between 0 and 1440),
	CONSTRAINT "events_expected_demand_nonnegative" CHECK ("events"."expected_demand" >= 0),
	CONSTRAINT "events_sale_before_start" CHECK ("events"."sale_starts_at" <= "events"."starts_at"),
	CONSTRAINT "events_currency_format" CHECK ("events"."currency" ~ '^[A-Z]{3}$')
);
--> statement-breakpoint
CREATE TABLE "hold_items" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"hold_id" uuid NOT NULL,
	"event_id" uuid NOT NULL,
	"seat_index" integer,
	"section_id" uuid NOT NULL,
	"quantity" integer DEFAULT 1 NOT NULL,
	"price_cents" integer NOT NULL,
	CONSTRAINT "hold_items_quantity_positive" CHECK ("hold_items"."quantity" > 0),
	CONSTRAINT "hold_items_seat_single" CHECK ("hold_items"."seat_index" is null or "hold_items"."quantity" = 1)
);
--> statement-breakpoint
CREATE TABLE "holds" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"event_id" uuid NOT NULL,
	"account_id" uuid NOT NULL,
	"status" text DEFAULT 'live' NOT NULL,
	"client_request_id" text NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"waitlist_entry_id" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "orders" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"event_id" uuid NOT NULL,
	"account_id" uuid NOT NULL,
	"hold_id" uuid NOT NULL,
	"status" text DEFAULT 'confirmed' NOT NULL,
	"total_cents" integer NOT NULL,
	"currency" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "organizer_api_keys" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"organizer_id" uuid NOT NULL,
	"key_hash" text NOT NULL,
	"label" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"revoked_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "organizers" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "payments" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"hold_id" uuid NOT NULL,
	"order_id" uuid,
	"event_id" uuid NOT NULL,
	"account_id" uuid NOT NULL,
	"provider" text DEFAULT 'stripe' NOT NULL,
	"provider_payment_id" text,
	"idempotency_key" text NOT NULL,
	"attempt" integer DEFAULT 1 NOT NULL,
	"amount_cents" integer NOT NULL,
	"currency" text NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"gateway_calls" integer DEFAULT 0 NOT NULL,
	"last_error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "payments_amount_nonnegative" CHECK ("payments"."amount_cents" >= 0)
);
--> statement-breakpoint
CREATE TABLE "pre_registrations" (
	"event_id" uuid NOT NULL,
	"account_id" uuid NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "pre_registrations_pkey" PRIMARY KEY("event_id","account_id")
);
--> statement-breakpoint
CREATE TABLE "seat_rows" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"section_id" uuid NOT NULL,
	"label" text NOT NULL,
	"sort_order" integer NOT NULL,
	"price_tier" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "seats" (
	"venue_id" uuid NOT NULL,
	"seat_index" integer NOT NULL,
	"section_id" uuid NOT NULL,
	"row_id" uuid NOT NULL,
	"label" text NOT NULL,
	"position" integer NOT NULL,
	"best_rank" integer NOT NULL,
	"price_tier" text NOT NULL,
	CONSTRAINT "seats_pkey" PRIMARY KEY("venue_id","seat_index"),
	CONSTRAINT "seats_index_nonnegative" CHECK ("seats"."seat_index" >= 0)
);
--> statement-breakpoint
CREATE TABLE "sections" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"venue_id" uuid NOT NULL,
	"label" text NOT NULL,
	"name" text NOT NULL,
	"sort_order" integer NOT NULL,
	"kind" text NOT NULL,
	"price_tier" text,
	"ga_capacity" integer,
	CONSTRAINT "sections_kind_capacity" CHECK (("sections"."kind" = 'seated') = ("sections"."ga_capacity" is null)),
	CONSTRAINT "sections_ga_capacity_positive" CHECK ("sections"."ga_capacity" is null or "sections"."ga_capacity" > 0)
);
--> statement-breakpoint
CREATE TABLE "tickets" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"order_id" uuid NOT NULL,
	"event_id" uuid NOT NULL,
	"account_id" uuid NOT NULL,
	"seat_index" integer,
	"section_id" uuid NOT NULL,
	"price_cents" integer NOT NULL,
	"status" text DEFAULT 'valid' NOT NULL,
	"checked_in_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "venues" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"organizer_id" uuid NOT NULL,
	"name" text NOT NULL,
	"city" text,
	"timezone" text DEFAULT 'UTC' NOT NULL,
	"capacity" integer NOT NULL,
	"seat_count" integer NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "venues_capacity_positive" CHECK ("venues"."capacity" > 0)
);
--> statement-breakpoint
CREATE TABLE "waitlist_entries" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"event_id" uuid NOT NULL,
	"account_id" uuid NOT NULL,
	"quantity" integer NOT NULL,
	"price_tier" text,
	"status" text DEFAULT 'waiting' NOT NULL,
	"position" bigint GENERATED ALWAYS AS IDENTITY (sequence name "waitlist_entries_position_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"offer_hold_id" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "waitlist_quantity_range" CHECK ("waitlist_entries"."quantity" between 1 and 4)
);
--> statement-breakpoint
ALTER TABLE "event_ga_sections" ADD CONSTRAINT "event_ga_sections_event_id_events_id_fk" FOREIGN KEY ("event_id") REFERENCES "public"."events"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "event_ga_sections" ADD CONSTRAINT "event_ga_sections_section_id_sections_id_fk" FOREIGN KEY ("section_id") REFERENCES "public"."sections"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "event_price_tiers" ADD CONSTRAINT "event_price_tiers_event_id_events_id_fk" FOREIGN KEY ("event_id") REFERENCES "public"."events"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "event_seats" ADD CONSTRAINT "event_seats_event_id_events_id_fk" FOREIGN KEY ("event_id") REFERENCES "public"."events"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "event_seats" ADD CONSTRAINT "event_seats_hold_id_holds_id_fk" FOREIGN KEY ("hold_id") REFERENCES "public"."holds"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "events" ADD CONSTRAINT "events_organizer_id_organizers_id_fk" FOREIGN KEY ("organizer_id") REFERENCES "public"."organizers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "events" ADD CONSTRAINT "events_venue_id_venues_id_fk" FOREIGN KEY ("venue_id") REFERENCES "public"."venues"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "hold_items" ADD CONSTRAINT "hold_items_hold_id_holds_id_fk" FOREIGN KEY ("hold_id") REFERENCES "public"."holds"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "hold_items" ADD CONSTRAINT "hold_items_section_id_sections_id_fk" FOREIGN KEY ("section_id") REFERENCES "public"."sections"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "holds" ADD CONSTRAINT "holds_event_id_events_id_fk" FOREIGN KEY ("event_id") REFERENCES "public"."events"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "holds" ADD CONSTRAINT "holds_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "orders" ADD CONSTRAINT "orders_event_id_events_id_fk" FOREIGN KEY ("event_id") REFERENCES "public"."events"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "orders" ADD CONSTRAINT "orders_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "organizer_api_keys" ADD CONSTRAINT "organizer_api_keys_organizer_id_organizers_id_fk" FOREIGN KEY ("organizer_id") REFERENCES "public"."organizers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "payments" ADD CONSTRAINT "payments_order_id_orders_id_fk" FOREIGN KEY ("order_id") REFERENCES "public"."orders"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "pre_registrations" ADD CONSTRAINT "pre_registrations_event_id_events_id_fk" FOREIGN KEY ("event_id") REFERENCES "public"."events"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "pre_registrations" ADD CONSTRAINT "pre_registrations_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "seat_rows" ADD CONSTRAINT "seat_rows_section_id_sections_id_fk" FOREIGN KEY ("section_id") REFERENCES "public"."sections"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "seats" ADD CONSTRAINT "seats_venue_id_venues_id_fk" FOREIGN KEY ("venue_id") REFERENCES "public"."venues"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "seats" ADD CONSTRAINT "seats_section_id_sections_id_fk" FOREIGN KEY ("section_id") REFERENCES "public"."sections"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "seats" ADD CONSTRAINT "seats_row_id_seat_rows_id_fk" FOREIGN KEY ("row_id") REFERENCES "public"."seat_rows"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "sections" ADD CONSTRAINT "sections_venue_id_venues_id_fk" FOREIGN KEY ("venue_id") REFERENCES "public"."venues"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "tickets" ADD CONSTRAINT "tickets_order_id_orders_id_fk" FOREIGN KEY ("order_id") REFERENCES "public"."orders"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "tickets" ADD CONSTRAINT "tickets_event_id_events_id_fk" FOREIGN KEY ("event_id") REFERENCES "public"."events"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "tickets" ADD CONSTRAINT "tickets_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "tickets" ADD CONSTRAINT "tickets_section_id_sections_id_fk" FOREIGN KEY ("section_id") REFERENCES "public"."sections"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "venues" ADD CONSTRAINT "venues_organizer_id_organizers_id_fk" FOREIGN KEY ("organizer_id") REFERENCES "public"."organizers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "waitlist_entries" ADD CONSTRAINT "waitlist_entries_event_id_events_id_fk" FOREIGN KEY ("event_id") REFERENCES "public"."events"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "waitlist_entries" ADD CONSTRAINT "waitlist_entries_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "accounts_email_key" ON "accounts" USING btree (lower("email"));--> statement-breakpoint
CREATE INDEX "events_organizer_idx" ON "events" USING btree ("organizer_id");--> statement-breakpoint
CREATE INDEX "events_public_idx" ON "events" USING btree ("status","starts_at");--> statement-breakpoint
CREATE UNIQUE INDEX "hold_items_seat_key" ON "hold_items" USING btree ("hold_id","seat_index");--> statement-breakpoint
CREATE INDEX "hold_items_event_seat_idx" ON "hold_items" USING btree ("event_id","seat_index");--> statement-breakpoint
CREATE UNIQUE INDEX "holds_client_request_key" ON "holds" USING btree ("event_id","account_id","client_request_id");--> statement-breakpoint
CREATE INDEX "holds_account_idx" ON "holds" USING btree ("event_id","account_id","status");--> statement-breakpoint
CREATE INDEX "holds_live_expiry_idx" ON "holds" USING btree ("expires_at") WHERE "holds"."status" = 'live';--> statement-breakpoint
CREATE UNIQUE INDEX "orders_hold_key" ON "orders" USING btree ("hold_id");--> statement-breakpoint
CREATE INDEX "orders_account_idx" ON "orders" USING btree ("account_id","event_id");--> statement-breakpoint
CREATE UNIQUE INDEX "organizer_api_keys_key_hash_key" ON "organizer_api_keys" USING btree ("key_hash");--> statement-breakpoint
CREATE INDEX "organizer_api_keys_organizer_idx" ON "organizer_api_keys" USING btree ("organizer_id");--> statement-breakpoint
CREATE UNIQUE INDEX "payments_idempotency_key" ON "payments" USING btree ("idempotency_key");--> statement-breakpoint
CREATE UNIQUE INDEX "payments_provider_id_key" ON "payments" USING btree ("provider","provider_payment_id");--> statement-breakpoint
CREATE INDEX "payments_hold_idx" ON "payments" USING btree ("hold_id");--> statement-breakpoint
CREATE INDEX "payments_open_idx" ON "payments" USING btree ("updated_at") WHERE "payments"."status" in ('pending', 'unknown');--> statement-breakpoint
CREATE UNIQUE INDEX "seat_rows_section_label_key" ON "seat_rows" USING btree ("section_id","label");--> statement-breakpoint
CREATE UNIQUE INDEX "seats_row_label_key" ON "seats" USING btree ("row_id","label");--> statement-breakpoint
CREATE UNIQUE INDEX "seats_row_position_key" ON "seats" USING btree ("row_id","position");--> statement-breakpoint
CREATE INDEX "seats_best_rank_idx" ON "seats" USING btree ("venue_id","best_rank");--> statement-breakpoint
CREATE UNIQUE INDEX "sections_venue_label_key" ON "sections" USING btree ("venue_id","label");--> statement-breakpoint
CREATE UNIQUE INDEX "tickets_one_live_per_seat" ON "tickets" USING btree ("event_id","seat_index") WHERE "tickets"."status" <> 'void' and "tickets"."seat_index" is not null;--> statement-breakpoint
CREATE INDEX "tickets_order_idx" ON "tickets" USING btree ("order_id");--> statement-breakpoint
CREATE INDEX "tickets_account_idx" ON "tickets" USING btree ("account_id","event_id");--> statement-breakpoint
CREATE INDEX "venues_organizer_idx" ON "venues" USING btree ("organizer_id");--> statement-breakpoint
CREATE UNIQUE INDEX "waitlist_one_open_entry" ON "waitlist_entries" USING btree ("event_id","account_id") WHERE "waitlist_entries"."status" in ('waiting', 'offered');--> statement-breakpoint
CREATE INDEX "waitlist_queue_idx" ON "waitlist_entries" USING btree ("event_id","position") WHERE "waitlist_entries"."status" = 'waiting';