// Shell completion scripts, made from the command table: commands,
// subcommands and each command's options.
import { COMMANDS, GROUPS, subcommands, type CommandSpec } from './spec.js';

const topNames = () => [...new Set(COMMANDS.map((c) => c.name.split(' ')[0]!)), 'help'];
const flags = (c: CommandSpec) => Object.entries(c.options).flatMap(([name, o]) => [`--${name}`, ...(o.short ? [`-${o.short}`] : [])]);
const takesFile = (c: CommandSpec) => c.name === 'batch submit' || c.name === 'submit';
// `completion` and `help` take words, not options: each script completes them apart.
const withOptions = () => COMMANDS.filter((c) => c.name !== 'completion');

export function bashCompletion(): string {
  const cases = withOptions().map((c) => `    '${c.name}') opts='${flags(c).join(' ')}'; files=${takesFile(c) ? 1 : 0} ;;`).join('\n');
  const groups = Object.keys(GROUPS).map((g) => `    ${g}) subs='${subcommands(g).map((c) => c.name.split(' ')[1]).join(' ')}' ;;`).join('\n');
  return `# bash completion for jobrunner: source <(jobrunner completion bash)
_jobrunner() {
  local cur=\${COMP_WORDS[COMP_CWORD]} key subs='' opts='' files=0
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W '${topNames().join(' ')} --help --version' -- "$cur"))
    return
  fi
  case "\${COMP_WORDS[1]}" in
${groups}
  esac
  if [ -n "$subs" ] && [ "$COMP_CWORD" -eq 2 ]; then
    COMPREPLY=($(compgen -W "$subs --help" -- "$cur"))
    return
  fi
  key=\${COMP_WORDS[1]}
  [ -n "$subs" ] && key="\${COMP_WORDS[1]} \${COMP_WORDS[2]}"
  case "$key" in
${cases}
    completion) opts='bash zsh'; [[ "$cur" == -* ]] && opts='--help -h' ;;
    help) opts='${topNames().join(' ')}' ;;
  esac
  if [[ "$cur" == -* || "$key" == completion || "$key" == help ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  elif [ "$files" -eq 1 ]; then
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -F _jobrunner jobrunner
`;
}

const q = (s: string) => s.replace(/'/g, "'\\''").replace(/:/g, '\\:');

export function zshCompletion(): string {
  const described = (names: [string, string][]) => names.map(([n, d]) => `'${q(n)}:${q(d)}'`).join(' ');
  const top = described([
    ...COMMANDS.filter((c) => !c.name.includes(' ')).map((c): [string, string] => [c.name, c.summary]),
    ...Object.entries(GROUPS),
    ['help', 'help on a command'],
  ]);
  const groups = Object.keys(GROUPS).map((g) => `      ${g}) subs=(${described(subcommands(g).map((c) => [c.name.split(' ')[1]!, c.summary]))}) ;;`).join('\n');
  const cases = withOptions().map((c) => `      '${c.name}') opts=(${flags(c).join(' ')}) ;;`).join('\n');
  return `#compdef jobrunner
# zsh completion for jobrunner: source <(jobrunner completion zsh), after compinit
_jobrunner() {
  local -a cmds subs opts
  local key
  cmds=(${top})
  if (( CURRENT == 2 )); then
    _describe 'command' cmds
    return
  fi
  case $words[2] in
${groups}
  esac
  if (( \${#subs} )) && (( CURRENT == 3 )); then
    _describe 'subcommand' subs
    return
  fi
  key=$words[2]
  (( \${#subs} )) && key="$words[2] $words[3]"
  case $key in
${cases}
      completion) [[ $PREFIX == -* ]] && compadd -- --help -h || compadd bash zsh; return ;;
      help) compadd ${topNames().join(' ')}; return ;;
  esac
  if [[ $PREFIX == -* ]]; then
    compadd -- $opts
  else
    _files
  fi
}
compdef _jobrunner jobrunner
`;
}
