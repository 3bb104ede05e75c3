import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "postgresql",
  schema: "./core/db/schema.ts",
  out: "./migrations",
  casing: "snake_case",
});
