#!/bin/sh
# Prisma's CLI wants its native schema engine on every command and downloads
# it from a host this network cannot reach. `generate` needs no engine, so any
# executable satisfies the check (see DESIGN.md). Migrations are plain SQL
# applied by the service itself (src/db/migrate.ts).
set -e
cd "$(dirname "$0")/.."
export PRISMA_SCHEMA_ENGINE_BINARY="${PRISMA_SCHEMA_ENGINE_BINARY:-/bin/true}"
export PRISMA_HIDE_UPDATE_MESSAGE=1 CHECKPOINT_DISABLE=1
node scripts/derive-schemas.mjs
npx --no-install prisma generate --schema prisma/schema.prisma
npx --no-install prisma generate --schema prisma/postgres/schema.prisma
