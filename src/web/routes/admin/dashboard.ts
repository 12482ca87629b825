import { Router } from 'express';
import type { AppContext } from '../../../context.ts';
import { listCampaignOverview, type CampaignOverview } from '../../../campaigns/service.ts';
import { SETTLED_STATUSES } from '../../../cases/types.ts';
import { countFailedByKind, countLongRetryingByKind } from '../../../deliveries/service.ts';
import { KIND_NAMES, type DeliveryKind } from '../../../deliveries/types.ts';
import type { Render } from './render.ts';

/** A live campaign this close to its goal is worth a look (raise the goal, plan the hand-over). */
const NEAR_GOAL = 0.8;
const RECENT_DAYS = 30;
/** Campaigns the dashboard's table lists, live ones first, then by last change; the rest are counted. */
const DASHBOARD_ROWS = 200;
/** A deadline this many days off or closer is worth a look. */
const DEADLINE_WARNING_DAYS = 7;
/** Emails retried past this many minutes after they were asked for: longer than greylisting takes. */
const RETRYING_MINUTES = 30;

export interface Attention {
  href?: string;
  text: string;
}

const kindName = (kind: string) => KIND_NAMES[kind as DeliveryKind] ?? kind;

function attentionFor(campaigns: CampaignOverview[], failedByKind: { kind: string; n: number }[], retrying: { kind: string; n: number; last_error: string | null }[]): Attention[] {
  const items: Attention[] = [];
  for (const c of campaigns) {
    if (c.failed > 0) items.push({ href: `/admin/campaigns/${c.slug}#failed`, text: `${c.failed} ${c.failed === 1 ? 'letter' : 'letters'} failed in “${c.title}”` });
    if (c.status === 'live' && c.goal && c.confirmed >= c.goal) items.push({ href: `/admin/campaigns/${c.slug}/edit`, text: `“${c.title}” reached its goal of ${c.goal}` });
    else if (c.status === 'live' && c.goal && c.confirmed >= NEAR_GOAL * c.goal) {
      items.push({ href: `/admin/campaigns/${c.slug}`, text: `“${c.title}” is at ${c.confirmed} of ${c.goal}: near its goal` });
    }
    if ((c.status === 'live' || c.status === 'paused') && c.days_left !== null && c.days_left <= DEADLINE_WARNING_DAYS) {
      items.push({
        href: `/admin/campaigns/${c.slug}`,
        text: c.days_left < 0 ? `“${c.title}” passed its deadline (${c.deadline}): close it, or move the deadline`
          : c.days_left === 0 ? `“${c.title}” ends today` : `“${c.title}” ends in ${c.days_left} ${c.days_left === 1 ? 'day' : 'days'} (${c.deadline})`,
      });
    }
    if (c.status === 'paused') items.push({ href: `/admin/campaigns/${c.slug}`, text: `“${c.title}” is paused and takes no signatures` });
    if (c.status === 'live' && SETTLED_STATUSES.has(c.case_status)) {
      items.push({ href: `/admin/campaigns/${c.slug}`, text: `“${c.title}” still takes signatures and sends letters, though ${c.person_name}’s case is now “${c.case_status.replace(/_/g, ' ')}”: close or pause it, or change its letter` });
    }
  }
  for (const f of failedByKind) {
    if (f.kind !== 'letter' && f.kind !== 'digest') items.push({ href: '/admin/deliveries/failed', text: `${f.n} failed ${kindName(f.kind)} ${f.n === 1 ? 'email' : 'emails'}` });
  }
  // Letters are listed by campaign above, but only the campaigns shown here: a campaign closed
  // long ago keeps its failed letters, and they must not drop out of sight.
  const failedLetters = failedByKind.filter((f) => f.kind === 'letter' || f.kind === 'digest').reduce((n, f) => n + f.n, 0);
  const elsewhere = failedLetters - campaigns.reduce((n, c) => n + c.failed, 0);
  if (elsewhere > 0) items.push({ href: '/admin/deliveries/failed', text: `${elsewhere} ${elsewhere === 1 ? 'letter' : 'letters'} failed in campaigns not listed here` });
  // Not failed yet, but not going either: a relay down or refusing for now shows here before the
  // attempts run out. Letters are listed on their campaign's page, alerts on their case's.
  for (const r of retrying) {
    const what = `${r.n} ${kindName(r.kind)} ${r.n === 1 ? 'email is' : 'emails are'}`;
    items.push({ text: `${what} still being retried more than ${RETRYING_MINUTES} minutes after ${r.n === 1 ? 'it was' : 'they were'} asked for${r.last_error ? `; the mail relay said: ${r.last_error}` : ''}` });
  }
  return items;
}

export function dashboardRoutes(ctx: AppContext, render: Render): Router {
  const router = Router();

  router.get('/', async (_req, res) => {
    const [all, failedByKind, retrying] = await Promise.all([
      // Every campaign in scope: the tiles and what needs attention count them all, the table
      // lists the first DASHBOARD_ROWS.
      listCampaignOverview(ctx.db, { recentDays: RECENT_DAYS }, { limit: null }),
      countFailedByKind(ctx.db),
      countLongRetryingByKind(ctx.db, RETRYING_MINUTES),
    ]);
    const campaigns = all.slice(0, DASHBOARD_ROWS);
    const totals = all.reduce(
      // A closed campaign's pending signatures are never confirmed: no letter waits on them.
      (t, c) => ({ confirmed: t.confirmed + c.confirmed, pending: t.pending + (c.status === 'closed' ? 0 : c.pending), sent: t.sent + c.sent, failed: t.failed + c.failed }),
      { confirmed: 0, pending: 0, sent: 0, failed: 0 },
    );
    render(res, 'dashboard', {
      title: 'Dashboard',
      section: 'dashboard',
      campaigns,
      notListed: all.length - campaigns.length,
      live: all.filter((c) => c.status === 'live').length,
      totals,
      attention: attentionFor(all, failedByKind, retrying),
      recentDays: RECENT_DAYS,
    });
  });

  return router;
}
