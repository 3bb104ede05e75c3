// Pure helpers of the organizer console (no DOM): a seating chart's preview and
// the UTC date inputs. Node tests import this module as the browser does.

/**
 * What a seating chart holds, for the preview before saving: its sections with
 * row and place counts and price tiers, the capacity, or the first problem that
 * keeps it from being a chart. The server validates fully on save.
 */
export function chartSummary(chart) {
  if (chart === null || typeof chart !== "object" || Array.isArray(chart)) return { problem: "A chart is a JSON object with a name and sections." };
  if (typeof chart.name !== "string" || chart.name.trim() === "") return { problem: "The chart needs a name." };
  if (!Array.isArray(chart.sections) || chart.sections.length === 0) return { problem: "The chart needs at least one section." };
  const sections = [];
  const tiers = [];
  for (const [i, section] of chart.sections.entries()) {
    const label = typeof section?.label === "string" ? section.label : "";
    if (label === "") return { problem: `Section ${i + 1} needs a label.` };
    const rows = Array.isArray(section.rows) ? section.rows : null;
    const standing = section.generalAdmission && typeof section.generalAdmission.capacity === "number" ? section.generalAdmission.capacity : null;
    if ((rows === null) === (standing === null)) return { problem: `Section ${label} needs either rows or a general-admission capacity.` };
    let places = standing ?? 0;
    const sectionTiers = new Set();
    for (const row of rows ?? []) {
      const seats = Array.isArray(row?.seats) ? row.seats.length : Number.isInteger(row?.seats) ? row.seats : NaN;
      if (!(seats > 0)) return { problem: `Row ${row?.label ?? "?"} of section ${label} needs seats.` };
      places += seats;
      const tier = row.priceTier ?? section.priceTier;
      if (typeof tier !== "string") return { problem: `Row ${row?.label ?? "?"} of section ${label} needs a price tier.` };
      sectionTiers.add(tier);
    }
    if (standing !== null) {
      if (typeof section.priceTier !== "string") return { problem: `Section ${label} needs a price tier.` };
      sectionTiers.add(section.priceTier);
    }
    for (const tier of sectionTiers) if (!tiers.includes(tier)) tiers.push(tier);
    sections.push({ label, priceTier: [...sectionTiers].join(", "), rows: rows?.length ?? 0, places });
  }
  return { name: chart.name, sections, priceTiers: tiers, capacity: sections.reduce((sum, s) => sum + s.places, 0) };
}

const pad = (n) => String(n).padStart(2, "0");

/** A datetime-local input's value ("2027-03-01T19:00") for epoch ms, in UTC. */
export function toUtcInput(ms) {
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
}

/** The ISO time of a datetime-local input's value read as UTC. */
export function fromUtcInput(value) {
  return new Date(`${value}:00Z`).toISOString();
}
