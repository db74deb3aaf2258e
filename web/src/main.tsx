// The dashboard: sign-in, then the views picked by the location hash.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { currentToken, gql, onSessionExpired, onTokenChange, signOut, type Me } from './api.js';
import { AdminPage } from './pages/admin.js';
import { BatchPage, BatchesPage } from './pages/batches.js';
import { JobPage } from './pages/job.js';
import { JobsPage } from './pages/jobs.js';
import { SignIn } from './pages/signIn.js';
import { SubmitPage } from './pages/submit.js';
import { href, navigate, useRoute, type Route } from './router.js';
import { ErrorBanner, MeContext } from './ui.js';
import './style.css';

function View({ route, me }: { route: Route; me: Me }) {
  const [section, id] = route.parts;
  if (section === 'jobs' && id) return <JobPage key={id} id={id} />;
  if (section === 'submit') return <SubmitPage key={route.hash} from={route.query.get('from')} />;
  if (section === 'batches' && id) return <BatchPage key={id} id={id} />;
  if (section === 'batches') return <BatchesPage />;
  if (section === 'admin' && me.role === 'ADMIN') return <AdminPage />;
  return <JobsPage query={route.query} />;
}

function Nav({ me, route }: { me: Me; route: Route }) {
  const section = route.parts[0] ?? 'jobs';
  const link = (to: string, label: string) => (
    <a href={href(`/${to}`)} aria-current={section === to ? 'page' : undefined}>
      {label}
    </a>
  );
  return (
    <header class="top">
      <a class="brand" href="#/jobs">
        Job Runner
      </a>
      <nav aria-label="Main">
        {link('jobs', 'Jobs')}
        {link('batches', 'Batches')}
        {me.role !== 'VIEWER' && link('submit', 'Submit')}
        {me.role === 'ADMIN' && link('admin', 'Admin')}
      </nav>
      <div class="who">
        <span title={me.id}>
          {me.email} <span class="role">{me.role.toLowerCase()}</span>
        </span>
        <button
          type="button"
          onClick={async () => {
            await signOut();
            navigate('#/signin', true);
          }}
        >
          Sign out
        </button>
      </div>
    </header>
  );
}

function App() {
  const route = useRoute();
  const [me, setMe] = useState<Me | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [token, setTokenState] = useState(currentToken());

  useEffect(() => onTokenChange(() => setTokenState(currentToken())), []);

  // An ended session: back to sign-in, remembering where the user was.
  useEffect(
    () =>
      onSessionExpired(() => {
        setMe(null);
        setTokenState(null);
        const back = location.hash.startsWith('#/signin') ? null : location.hash;
        navigate(href('/signin', { next: back, expired: '1' }), true);
      }),
    [],
  );

  useEffect(() => {
    if (!token) return;
    let live = true;
    gql<{ me: Me }>('{ me { id email role } }')
      .then((d) => live && setMe(d.me))
      .catch((e: Error) => live && setError(e.message));
    return () => {
      live = false;
    };
  }, [token]);

  if (!token || route.parts[0] === 'signin') {
    return (
      <SignIn
        expired={route.query.get('expired') === '1'}
        onSignedIn={() => {
          setError(null);
          setMe(null);
          setTokenState(currentToken());
          // Signing in from a page's own address (a bookmark, a reload) returns there.
          const next = route.parts[0] === 'signin' ? route.query.get('next') : route.hash;
          navigate(next && next.startsWith('#/') && !next.startsWith('#/signin') ? next : '#/jobs', true);
        }}
      />
    );
  }
  if (!me) return <main class="page">{error ? <ErrorBanner error={error} /> : <p class="muted">Loading…</p>}</main>;
  return (
    <MeContext.Provider value={me}>
      <Nav me={me} route={route} />
      <main class="page" id="main">
        <View route={route} me={me} />
      </main>
    </MeContext.Provider>
  );
}

const root = document.getElementById('app')!;
root.textContent = ''; // the "Loading" placeholder of index.html
render(<App />, root);
