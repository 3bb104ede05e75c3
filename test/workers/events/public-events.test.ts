/** Published events as fans see them (`GET /api/events`, `GET /api/events/:id`): upcoming ones only, cacheably; drafts are a 404. */
import { describe, expect, it } from "vitest";
import { DAY, eventBody, eventList, fromNow, HOUR, organizerWithTheatre, postEvent, strictEvent } from "../../fixtures/events";
import { expectApiError, rawRequest } from "../../fixtures/http";

describe("public events", () => {
  const PUBLIC_CACHE = /^public, .*max-age=\d+/;

  it("lists published upcoming events only, cacheably", async () => {
    const { apiKey, venue } = await organizerWithTheatre();
    const published = await postEvent(apiKey, eventBody(venue.id, { startsAt: fromNow(HOUR), saleStartsAt: fromNow(-DAY), status: "published" }));
    const draft = await postEvent(apiKey, eventBody(venue.id, { startsAt: fromNow(HOUR), saleStartsAt: fromNow(-DAY) }));
    const past = await postEvent(apiKey, eventBody(venue.id, { startsAt: fromNow(-2 * DAY), endsAt: fromNow(-DAY), saleStartsAt: fromNow(-9 * DAY), status: "published" }));
    const running = await postEvent(apiKey, eventBody(venue.id, { startsAt: fromNow(-HOUR), endsAt: fromNow(HOUR), saleStartsAt: fromNow(-9 * DAY), status: "published" }));

    const response = await rawRequest("/api/events");
    expect(response.status).toBe(200);
    expect(response.headers.get("Cache-Control")).toMatch(PUBLIC_CACHE);
    const ids = eventList.parse(response.json).events.map((e) => e.id);
    expect(ids).toContain(published.id);
    expect(ids).toContain(running.id);
    expect(ids).not.toContain(draft.id);
    expect(ids).not.toContain(past.id);
  });

  it("shows a published event and hides a draft", async () => {
    const { apiKey, venue } = await organizerWithTheatre();
    const published = await postEvent(apiKey, eventBody(venue.id, { status: "published" }));
    const draft = await postEvent(apiKey, eventBody(venue.id));

    const shown = await rawRequest(`/api/events/${published.id}`);
    expect(shown.status).toBe(200);
    expect(shown.headers.get("Cache-Control")).toMatch(PUBLIC_CACHE);
    const { saleState: _state, ...publicView } = strictEvent.parse(shown.json);
    const { saleState: _s, ...adminView } = published;
    expect(publicView).toEqual(adminView);

    const hidden = await rawRequest(`/api/events/${draft.id}`);
    const unknown = await rawRequest(`/api/events/${crypto.randomUUID()}`);
    expectApiError(hidden, 404, "not_found");
    expect(hidden.text).toBe(unknown.text);
  });
});
