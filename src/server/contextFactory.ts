import type { Database } from '../db/client.js';
import type { Context } from '../graphql/context.js';
import type { Logger } from '../logger.js';
import type { Services } from '../services/index.js';

export function bearerToken(header: string | null | undefined): string | null {
  const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return m ? m[1]! : null;
}

/** One context factory for GraphQL over HTTP, over WebSocket and for REST. */
export function createContextFactory(services: Services, db: Database, log: Logger) {
  return async (authorization: string | null | undefined, clientAddress: string): Promise<Context> => {
    const token = bearerToken(authorization);
    const result = token ? await services.auth.authenticate(token, clientAddress) : null;
    const refused = result !== null && 'problem' in result;
    return {
      services,
      prisma: db.prisma,
      viewer: result && !('problem' in result) ? result.viewer : null,
      authProblem: refused ? result.problem : null,
      clientAddress,
      log,
    };
  };
}

export type ContextFactory = ReturnType<typeof createContextFactory>;
