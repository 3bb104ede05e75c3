/** Stored JSON is checked against its schema when read back, never cast. */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { readStoredJson } from "../../../durable-objects/lib/stored-json";

const seats = z.array(z.number().int().nonnegative());

describe("readStoredJson", () => {
  it("returns what matches the schema", () => {
    expect(readStoredJson(seats, "[3, 4]", "seat list")).toEqual([3, 4]);
  });

  it("throws, naming the column, on text that is not JSON or does not match", () => {
    expect(() => readStoredJson(seats, "[3, 4", "seat list")).toThrow(/stored seat list is not JSON/);
    expect(() => readStoredJson(seats, '[3, "4"]', "seat list")).toThrow(/stored seat list does not match its schema/);
    expect(() => readStoredJson(seats, "[-1]", "seat list")).toThrow(/does not match/);
    expect(() => readStoredJson(seats, "null", "seat list")).toThrow(/does not match/);
  });
});
