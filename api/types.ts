/** The API's dependencies, shared by the app and its routes (which therefore never import each other). */
import type { Client } from '@temporalio/client';
import type { CommandDeps } from '../commands/types';
import { defaultConfig } from '../config';
import type { Db } from '../db/prisma';
import type { MemoryService } from '../memory/service';
import type { ModelGateway } from '../models/gateway';
import type { GoalSettings } from '../workflows/types';

export interface AppDeps {
  client: Client;
  prisma: Db;
  memory: MemoryService;
  apiKey: string;
  taskQueue: string;
  goalSettings: GoalSettings;
  defaultBudgetUsd: number;
  bodyLimit?: string;
  /** Deadline of every Temporal call the API makes (KEEL_TEMPORAL_TIMEOUT_MS); the config's default when unset. */
  temporalTimeoutMs?: number;
  /** Who decisions made through this API are recorded as. */
  actor: string;
  /** The model gateway, when a model endpoint is configured: inbound events are classified by the small tier. */
  models?: ModelGateway;
  /** How long an event's classification may wait for the model before the rules answer (default 15 s). */
  classifyTimeoutMs?: number;
}

/** The part of the API's dependencies the commands (commands/) use. */
export function commandDeps(deps: AppDeps): CommandDeps {
  return {
    client: deps.client,
    prisma: deps.prisma,
    taskQueue: deps.taskQueue,
    goalSettings: deps.goalSettings,
    defaultBudgetUsd: deps.defaultBudgetUsd,
    temporalTimeoutMs: deps.temporalTimeoutMs ?? defaultConfig().KEEL_TEMPORAL_TIMEOUT_MS,
    actor: deps.actor,
  };
}
