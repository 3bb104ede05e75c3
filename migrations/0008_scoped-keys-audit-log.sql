CREATE TABLE "organizer_audit_log" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "organizer_audit_log_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"organizer_id" uuid NOT NULL,
	"api_key_id" uuid NOT NULL,
	"api_key_name" text NOT NULL,
	"action" text NOT NULL,
	"target_id" text,
	"event_id" uuid,
	"before" jsonb,
	"after" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "organizer_api_keys" ADD COLUMN "scope" text DEFAULT 'admin' NOT NULL;--> statement-breakpoint
ALTER TABLE "organizer_api_keys" ADD COLUMN "expires_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "organizer_audit_log" ADD CONSTRAINT "organizer_audit_log_organizer_id_organizers_id_fk" FOREIGN KEY ("organizer_id") REFERENCES "public"."organizers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "organizer_audit_log_organizer_idx" ON "organizer_audit_log" USING btree ("organizer_id","id");--> statement-breakpoint
CREATE INDEX "organizer_audit_log_event_idx" ON "organizer_audit_log" USING btree ("organizer_id","event_id","id");--> statement-breakpoint
ALTER TABLE "organizer_api_keys" ADD CONSTRAINT "organizer_api_keys_scope_check" CHECK ("organizer_api_keys"."scope" in ('admin', 'read', 'check_in'));