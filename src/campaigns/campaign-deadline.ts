// What a campaign's deadline may be; createCampaign and updateCampaignDetails (service.ts) save it.

/**
 * A deadline as YYYY-MM-DD: a real calendar day (2026-02-30 is refused, not rolled over to March)
 * of a year from 1970 (Postgres refuses year 0000; no campaign ends before it began).
 */
function isDeadline(v: string): boolean {
  const day = v.trim();
  const d = new Date(`${day}T00:00:00Z`);
  return /^\d{4}-\d{2}-\d{2}$/.test(day) && !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === day && d.getUTCFullYear() >= 1970;
}

/**
 * What is wrong with `deadline` (`YYYY-MM-DD`, or empty for none) for a campaign whose deadline is
 * `current`: not a day (isDeadline), or a day already past, most likely a slip of the year. Past
 * means before yesterday in UTC, so that today is today anywhere. A deadline that has passed is
 * kept when the campaign is saved again.
 */
export function deadlineMistake(deadline: string, current: string | null): string | undefined {
  const value = deadline.trim();
  if (!value || value === current) return undefined;
  if (!isDeadline(value)) return 'must be a date like 2026-03-31';
  const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
  if (value < yesterday) return 'has passed: give the day the officials must act by, today or later';
  return undefined;
}
