CREATE TABLE "admission_samples" (
	"event_id" uuid NOT NULL,
	"minute" timestamp with time zone NOT NULL,
	"admitted" integer NOT NULL,
	"rate_per_second" integer NOT NULL,
	"paused" boolean NOT NULL,
	CONSTRAINT "admission_samples_pkey" PRIMARY KEY("event_id","minute")
);
--> statement-breakpoint
ALTER TABLE "admission_samples" ADD CONSTRAINT "admission_samples_event_id_events_id_fk" FOREIGN KEY ("event_id") REFERENCES "public"."events"("id") ON DELETE cascade ON UPDATE no action;