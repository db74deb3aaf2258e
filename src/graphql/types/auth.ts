import { builder } from '../builder.js';

const AuthToken = builder
  .objectRef<{ accessToken: string; tokenType: 'bearer'; expiresIn: number }>('AuthToken')
  .implement({
    fields: (t) => ({
      accessToken: t.exposeString('accessToken'),
      tokenType: t.exposeString('tokenType'),
      expiresIn: t.exposeInt('expiresIn', { description: 'Seconds until the token expires' }),
    }),
  });

builder.mutationField('login', (t) =>
  t.field({
    type: AuthToken,
    args: { email: t.arg.string({ required: true }), password: t.arg.string({ required: true }) },
    resolve: (_root, { email, password }, ctx) => ctx.services.auth.login(email, password, ctx.clientAddress),
  }),
);
