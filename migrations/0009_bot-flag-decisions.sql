ALTER TABLE "bot_flags" ADD COLUMN "decision" text;--> statement-breakpoint
ALTER TABLE "bot_flags" ADD COLUMN "decided_at" timestamp with time zone;