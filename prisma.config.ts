import { defineConfig } from 'prisma/config';
import { databaseUrl } from './config';

// Prisma 7 reads the connection from here. Keel applies its own SQL
// migrations (scripts/migrate.ts), so only `prisma generate` uses this file.
export default defineConfig({
  schema: 'prisma/schema.prisma',
  datasource: { url: databaseUrl() },
});
