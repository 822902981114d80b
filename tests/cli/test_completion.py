"""runqy completion: the bash script completes in a real bash, the zsh script parses (and completes
with zsh's completion builtins stood in for); both come from the parser, so every verb is there."""

import shutil
import subprocess

import pytest

from tests.cli.helpers import COMMANDS, cli


def _script(capsys, shell: str, tmp_path) -> str:
    code, out, err = cli(capsys, "completion", shell)
    assert (code, err) == (0, "")
    path = tmp_path / ("runqy." + shell)
    path.write_text(out)
    return str(path)


def complete_in_bash(script: str, line: str) -> list[str]:
    """What bash offers for ``line`` (the cursor at its end): COMP_WORDS and COMP_CWORD set as bash
    sets them, the completion function called, COMPREPLY printed one a line."""
    words = line.split() + ([""] if line.endswith(" ") else [])
    program = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _runqy; '
               'printf "%s\\n" "${COMPREPLY[@]}"')
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c", program, "bash", script, *words],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return [word for word in done.stdout.splitlines() if word]


@pytest.mark.parametrize("line, offered", [
    ("runqy qu", ["queue"]),
    ("runqy queue p", ["pause"]),
    ("runqy -s http://localhost:3000 queue p", ["pause"]),
    ("runqy st", ["status"]),
    ("runqy task list inference.high --state ar", ["archived"]),
    ("runqy queue run inference --state ", ["scheduled", "retry", "archived"]),
    ("runqy task enqueue --id", ["--idempotency-key"]),
    ("runqy completion ", ["bash", "zsh"]),
    ("runqy completion -s ", []),  # a flag's value, not the shell's name: bash's file names
    ("runqy nosuch ", ["status", "queue", "task", "worker", "config", "vault", "login", "logout", "auth", "serve",
                       "completion"]),
])
def test_bash_completes_nouns_verbs_flags_and_choices(capsys, tmp_path, line, offered):
    assert complete_in_bash(_script(capsys, "bash", tmp_path), line) == offered


def test_bash_completes_every_verb_of_every_noun(capsys, tmp_path):
    script = _script(capsys, "bash", tmp_path)
    nouns = {words[0] for words in COMMANDS if len(words) == 2}

    for noun in sorted(nouns):
        assert complete_in_bash(script, "runqy %s " % noun) == [words[1] for words in COMMANDS if words[0] == noun]


@pytest.mark.skipif(not shutil.which("zsh"), reason="zsh is not installed")
def test_the_zsh_script_parses_and_offers_verbs_and_choices(capsys, tmp_path):
    script = _script(capsys, "zsh", tmp_path)
    assert subprocess.run(["zsh", "-n", script], capture_output=True, text=True, timeout=30).returncode == 0

    # outside a completion widget: compadd and _describe print what they are given
    program = ('compdef() { :; }; compadd() { print -rl -- ${(P)2}; }; _describe() { print -rl -- ${(P)4}; }; '
               'source "$1"; words=(runqy queue ""); CURRENT=3; _runqy; print -- ---; '
               'words=(runqy task list q --state ""); CURRENT=6; _runqy')
    done = subprocess.run(["zsh", "-f", "-c", program, "zsh", script], capture_output=True, text=True, timeout=30)

    assert done.returncode == 0, done.stderr
    verbs, states = done.stdout.split("---\n")
    assert verbs.splitlines()[:2] == ["list:list every queue with its task counts",
                                      "inspect:show one queue: counts, sub-queues, config"]
    assert states.split() == ["pending", "active", "scheduled", "retry", "archived", "completed"]
