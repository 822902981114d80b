"""``runqy completion bash|zsh``: a shell completion script, written from the CLI's own parser.

The script is made from the argparse tree each time it is printed, so its nouns, verbs,
flags and choices are those of the installed CLI. It walks the words typed so far down the
tree (a word that names no command there, such as a flag's value, is passed over), then
offers the commands under that point, or its flags after a ``-``, or the choices of the
flag just typed; a flag that takes any value gets the shell's file names.
"""

import argparse
import functools
import shlex
from typing import Iterator

from runqy.cli.errors import OK
from runqy.cli.parsing import Commands

SHELLS = ("bash", "zsh")

Tree = list[tuple[str, argparse.ArgumentParser]]


def register(commands: Commands, root: argparse.ArgumentParser) -> None:
    p = commands.command("completion", functools.partial(completion, root), "print a shell completion script",
                         remote=False, json_out=False,
                         example=("runqy completion bash > ~/.local/share/bash-completion/completions/runqy",
                                  "runqy completion zsh > \"${fpath[1]}/_runqy\""))
    p.add_argument("shell", choices=SHELLS)


def completion(root: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    print(bash_script(root) if args.shell == "bash" else zsh_script(root), end="")
    return OK


# --- the tree --------------------------------------------------------------------------------


def _walk(parser: argparse.ArgumentParser, path: str = "runqy") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every parser of the tree, with its path of command words (``runqy queue list``)."""
    yield path, parser
    for name, child in _commands(parser).items():
        yield from _walk(child, "%s %s" % (path, name))


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return {name: child for action in parser._actions if isinstance(action, argparse._SubParsersAction)
            for name, child in action.choices.items()}


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and a.help != argparse.SUPPRESS]


def _words(parser: argparse.ArgumentParser) -> dict[str, str]:
    """What may be typed here that is not a flag: the commands with their help, a positional's choices."""
    words = {name: child.description or "" for name, child in _commands(parser).items()}
    for action in parser._actions:
        if not action.option_strings and action.choices and not isinstance(action, argparse._SubParsersAction):
            words.update((str(choice), "") for choice in action.choices)
    return words


def _flags(parser: argparse.ArgumentParser) -> list[str]:
    return [flag for action in _options(parser) for flag in action.option_strings]


def _choices(tree: Tree) -> dict[tuple[str, ...], list[str]]:
    """The flags that take a value, each as ``path flag`` (the words before the cursor), by their
    choices: () for a flag that takes any value."""
    by_choices: dict[tuple[str, ...], list[str]] = {}
    for path, parser in tree:
        for action in _options(parser):
            if action.nargs != 0:
                choices = tuple(map(str, action.choices or ()))
                by_choices.setdefault(choices, []).extend("%s %s" % (path, f) for f in action.option_strings)
    return by_choices


def _cases(patterns: list[str]) -> str:
    """A ``case`` pattern that matches any of ``patterns`` as they are."""
    return "|".join(shlex.quote(p) for p in patterns)


# --- bash --------------------------------------------------------------------------------------


def bash_script(root: argparse.ArgumentParser) -> str:
    tree = list(_walk(root))
    lines = [
        "# bash completion for runqy, written by 'runqy completion bash' from the CLI's own parser.",
        "# Load it in ~/.bashrc with:  source <(runqy completion bash)",
        "_runqy() {",
        '    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} node=runqy words="" flags="" i',
        "    for ((i = 1; i < COMP_CWORD; i++)); do",
        '        case "$node ${COMP_WORDS[i]}" in',
        '            %s) node="$node ${COMP_WORDS[i]}" ;;' % _cases([path for path, _ in tree[1:]]),
        "        esac",
        "    done",
        '    case "$node $prev" in',
    ]
    for choices, flags in _choices(tree).items():
        if choices:
            lines.append('        %s) COMPREPLY=($(compgen -W %s -- "$cur")); return 0 ;;'
                         % (_cases(flags), shlex.quote(" ".join(choices))))
        else:
            lines.append("        %s) compopt -o default 2>/dev/null; COMPREPLY=(); return 0 ;;" % _cases(flags))
    lines += ["    esac", '    case "$node" in']
    for path, parser in tree:
        lines.append("        %s) words=%s; flags=%s ;;" % (shlex.quote(path), shlex.quote(" ".join(_words(parser))),
                                                           shlex.quote(" ".join(_flags(parser)))))
    lines += [
        "    esac",
        "    [[ $cur == -* ]] && words=$flags",
        '    COMPREPLY=($(compgen -W "$words" -- "$cur"))',
        "}",
        "complete -F _runqy runqy",
    ]
    return "\n".join(lines) + "\n"


# --- zsh ---------------------------------------------------------------------------------------


def _described(words: dict[str, str]) -> str:
    """``_describe`` entries: ``name:help``, a colon in the name escaped."""
    return " ".join(shlex.quote(name.replace(":", "\\:") + (":" + help_ if help_ else ""))
                    for name, help_ in words.items())


def zsh_script(root: argparse.ArgumentParser) -> str:
    tree = list(_walk(root))
    lines = [
        "#compdef runqy",
        "# zsh completion for runqy, written by 'runqy completion zsh' from the CLI's own parser.",
        "# Save it as _runqy in a directory of $fpath, or load it after compinit with:  source <(runqy completion zsh)",
        "_runqy() {",
        "    local node=runqy i",
        "    local -a entries flags choices",
        "    for ((i = 2; i < CURRENT; i++)); do",
        '        case "$node ${words[i]}" in',
        '            (%s) node="$node ${words[i]}" ;;' % _cases([path for path, _ in tree[1:]]),
        "        esac",
        "    done",
        '    case "$node ${words[CURRENT-1]}" in',
    ]
    for choices, flags in _choices(tree).items():
        if choices:
            lines.append("        (%s) choices=(%s); compadd -a choices; return ;;"
                         % (_cases(flags), " ".join(map(shlex.quote, choices))))
        else:
            lines.append("        (%s) _files; return ;;" % _cases(flags))
    lines += ["    esac", '    case "$node" in']
    for path, parser in tree:
        lines.append("        (%s) entries=(%s); flags=(%s) ;;" % (shlex.quote(path), _described(_words(parser)),
                                                                   " ".join(_flags(parser))))
    lines += [
        "    esac",
        "    if [[ ${words[CURRENT]} == -* ]]; then",
        "        compadd -a flags",
        "    else",
        "        _describe -t commands command entries",
        "    fi",
        "}",
        'if [[ ${funcstack[1]} == _runqy ]]; then _runqy "$@"; else compdef _runqy runqy; fi',
    ]
    return "\n".join(lines) + "\n"
