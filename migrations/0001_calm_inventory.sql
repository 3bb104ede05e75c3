CREATE TABLE "inventory_attempts" (
	"event_id" uuid NOT NULL,
	"attempt_key" text NOT NULL,
	"last_at" timestamp with time zone NOT NULL,
	CONSTRAINT "inventory_attempts_pkey" PRIMARY KEY("event_id","attempt_key")
);
--> statement-breakpoint
CREATE TABLE "inventory_requests" (
	"event_id" uuid NOT NULL,
	"account_id" uuid NOT NULL,
	"request_id" text NOT NULL,
	"result" jsonb NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	CONSTRAINT "inventory_requests_pkey" PRIMARY KEY("event_id","account_id","request_id")
);
--> statement-breakpoint
ALTER TABLE "inventory_attempts" ADD CONSTRAINT "inventory_attempts_event_id_events_id_fk" FOREIGN KEY ("event_id") REFERENCES "public"."events"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "inventory_requests" ADD CONSTRAINT "inventory_requests_event_id_events_id_fk" FOREIGN KEY ("event_id") REFERENCES "public"."events"("id") ON DELETE cascade ON UPDATE no action;