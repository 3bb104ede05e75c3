CREATE TABLE "bot_flags" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"event_id" uuid NOT NULL,
	"account_id" uuid NOT NULL,
	"reason" text NOT NULL,
	"detail" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"deprioritized" boolean NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "events" ADD COLUMN "admission_rate_per_second" integer DEFAULT 500 NOT NULL;--> statement-breakpoint
ALTER TABLE "events" ADD COLUMN "bot_policy" text DEFAULT 'deprioritize' NOT NULL;--> statement-breakpoint
ALTER TABLE "events" ADD COLUMN "max_accounts_per_device" integer DEFAULT 3 NOT NULL;--> statement-breakpoint
ALTER TABLE "events" ADD COLUMN "max_accounts_per_ip" integer DEFAULT 50 NOT NULL;--> statement-breakpoint
ALTER TABLE "bot_flags" ADD CONSTRAINT "bot_flags_event_id_events_id_fk" FOREIGN KEY ("event_id") REFERENCES "public"."events"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "bot_flags" ADD CONSTRAINT "bot_flags_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "bot_flags_event_account_reason_key" ON "bot_flags" USING btree ("event_id","account_id","reason");--> statement-breakpoint
CREATE INDEX "bot_flags_event_idx" ON "bot_flags" USING btree ("event_id","created_at");--> statement-breakpoint
ALTER TABLE "events" ADD CONSTRAINT "events_admission_rate_positive" CHECK ("events"."admission_rate_per_second" > 0);--> statement-breakpoint
ALTER TABLE "events" ADD CONSTRAINT "events_bot_limits_positive" CHECK ("events"."max_accounts_per_device" > 0 and "events"."max_accounts_per_ip" > 0);