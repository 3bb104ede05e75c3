ALTER TABLE "orders" ADD COLUMN "delivered_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "orders" ADD COLUMN "delivery_retry_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "orders_undelivered_idx" ON "orders" USING btree ("delivery_queued_at") WHERE "orders"."delivered_at" is null and "orders"."delivery_queued_at" is not null;--> statement-breakpoint
-- Orders from before this column: their deliveries were queued and are taken as done, so the sweep does not email them again.
UPDATE "orders" SET "delivered_at" = "delivery_queued_at" WHERE "delivery_queued_at" IS NOT NULL;