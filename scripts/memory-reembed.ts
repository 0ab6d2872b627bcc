/**
 * `npm run memory:reembed`: re-embeds every memory with the configured
 * embedder (OPENAI_BASE_URL / KEEL_EMBED_MODEL / KEEL_EMBED_DIMS, or the
 * offline one) and rebuilds the vector store (Qdrant when QDRANT_URL is
 * set: recreated with the new size). Safe to stop and run again: converted
 * rows are not redone. Stop the worker and API first, and start them with
 * the new configuration after.
 */
import { loadConfig } from '../config';
import { createPrisma } from '../db/prisma';
import { openDatabase } from '../db/resolve';
import { embedderFromConfig } from '../memory/embedders';
import { reembedMemories } from '../memory/reembed';

async function run() {
  const config = loadConfig();
  // By db/resolve.ts's rules; the embedded database is served here for the command if nothing serves it.
  const database = await openDatabase(process.env, { serve: true });
  const prisma = createPrisma(database.url, { max: 2 });
  try {
    const embedder = embedderFromConfig(config, prisma, { dims: config.KEEL_EMBED_DIMS });
    let last = -1;
    const result = await reembedMemories({
      prisma,
      embedder,
      ...(config.QDRANT_URL
        ? {
            qdrant: {
              url: config.QDRANT_URL,
              apiKey: config.QDRANT_API_KEY,
              collection: config.KEEL_QDRANT_COLLECTION,
            },
          }
        : {}),
      onProgress: ({ done, pending, total }) => {
        if (done === last) return;
        last = done;
        if (done === 0) {
          console.log(
            `${pending} of ${total} memories to re-embed with ${embedder.model} (${embedder.dims} dimensions)`,
          );
        } else console.log(`re-embedded ${done}/${Math.max(done, pending)}`);
      },
    });
    console.log(
      `done: re-embedded ${result.reembedded} memories with ${result.model} (${result.dims} dimensions); ` +
        `${result.indexed} of ${result.total} indexed in the ${result.store} store` +
        (result.recreatedCollection ? ' (Qdrant collection recreated with the new size)' : ''),
    );
  } finally {
    await prisma.$disconnect();
    await database.close();
  }
}

run().catch((err) => {
  console.error(err);
  process.exit(1);
});
