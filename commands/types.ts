/** What the commands need from the process that runs them (the API builds this once). */
import type { Client } from '@temporalio/client';
import type { Db } from '../db/prisma';
import type { GoalSettings } from '../workflows/types';

export interface CommandDeps {
  client: Client;
  prisma: Db;
  taskQueue: string;
  goalSettings: GoalSettings;
  defaultBudgetUsd: number;
  /** Deadline of every Temporal call a command makes (KEEL_TEMPORAL_TIMEOUT_MS). */
  temporalTimeoutMs: number;
  /** Who decisions made through these commands are recorded as. */
  actor: string;
}
