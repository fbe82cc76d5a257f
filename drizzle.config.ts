import { defineConfig } from 'drizzle-kit';

// `npx drizzle-kit generate` writes SQL migrations to src/db/migrations; they are applied on start.
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db/schema.ts',
  out: './src/db/migrations',
});
