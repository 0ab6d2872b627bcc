/**
 * Every activity heartbeats while it runs, so an activity with a heartbeat
 * timeout is retried elsewhere soon after its worker dies, instead of when
 * its start-to-close timeout runs out. The fault suite found a goal's plan
 * waiting two minutes (the model preset's start-to-close timeout) after the
 * worker planning it was killed; model calls now have a heartbeat timeout and
 * this interceptor beats for them. The SDK throttles what reaches the server.
 */
import type { ActivityInboundCallsInterceptor, ActivityInterceptorsFactory } from '@temporalio/worker';
import type { Context } from '@temporalio/activity';

/** How often the interceptor beats; the SDK sends at most one per throttle interval. */
const BEAT_MS = 1000;

class Heartbeating implements ActivityInboundCallsInterceptor {
  constructor(private readonly ctx: Context) {}

  async execute(
    input: Parameters<NonNullable<ActivityInboundCallsInterceptor['execute']>>[0],
    next: Parameters<NonNullable<ActivityInboundCallsInterceptor['execute']>>[1],
  ): Promise<unknown> {
    // A local activity has no heartbeat (its workflow task is its lease): beating only makes the SDK core
    // warn "Activity heartbeat failed" once one runs past a second (bench:load's batch of decisions did).
    if (this.ctx.info.isLocal) return next(input);
    const beat = setInterval(() => this.ctx.heartbeat(), BEAT_MS);
    beat.unref();
    try {
      return await next(input);
    } finally {
      clearInterval(beat);
    }
  }
}

/** Register with `interceptors: { activity: [heartbeatWhileRunning] }`. */
export const heartbeatWhileRunning: ActivityInterceptorsFactory = (ctx) => ({ inbound: new Heartbeating(ctx) });
