// Email and password to a session token (the login mutation).
import { useState } from 'preact/hooks';
import { signIn } from '../api.js';
import { ErrorBanner, Field } from '../ui.js';

export function SignIn({ expired, onSignedIn }: { expired: boolean; onSignedIn(): void }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn(email.trim(), password);
      onSignedIn();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }
  return (
    <main class="signin">
      <form onSubmit={submit} aria-labelledby="signin-title">
        <h1 id="signin-title">Job Runner</h1>
        {expired && <p class="notice">Your session has ended. Sign in again to return to the page you were on.</p>}
        <Field id="email" label="Email">
          <input id="email" type="email" autocomplete="username" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        </Field>
        <Field id="password" label="Password">
          <input id="password" type="password" autocomplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        </Field>
        <ErrorBanner error={error} />
        <button class="primary" type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <p class="muted small">
          API: <a href="/docs">REST (Swagger)</a> · <a href="/graphql">GraphiQL</a>
        </p>
      </form>
    </main>
  );
}
