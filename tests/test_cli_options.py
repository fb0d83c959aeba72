"""The `kgfuse` command's everyday options: --version, help on everything, --quiet / --verbose
and messages through the `kgfuse` logger."""

from __future__ import annotations

import argparse
import logging
from importlib.metadata import version

import pytest

from kgfuse.tasks.cli import build_parser, cli_logging, main


def _parsers(parser: argparse.ArgumentParser, path: str = "kgfuse"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{path} {name}")


def test_version_is_the_installed_package_version(capsys):
    import kgfuse

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"kgfuse {version('kgfuse')}"
    assert kgfuse.__version__ == version("kgfuse")


OUTPUT = {"-q/--quiet", "-v/--verbose"}  # on every command, before or after its name
DATA = {"--format", "--lenient"}
# every command and sub-command with its options (positional arguments by name)
COMMANDS = {
    "kgfuse": OUTPUT | {"-V/--version"},
    "kgfuse demo": OUTPUT | {"--output", "--set"},
    "kgfuse graph": OUTPUT,
    "kgfuse graph build": OUTPUT | {"raw", "out", "--format", "--relations", "--no-inverse", "--columns", "--negated"},
    "kgfuse graph info": OUTPUT | {"path", "--format", "--top"},
    "kgfuse link": OUTPUT | {"text", "--graph", "--graph-format", "--choice", "--max-words"},
    "kgfuse prepare": OUTPUT | {"--config", "--set"},
    "kgfuse train": OUTPUT | {"--config", "--output", "--resume", "--allow-changes", "--overwrite", "--set"},
    "kgfuse pretrain": OUTPUT | {"--config", "--output", "--link-only", "--resume", "--allow-changes", "--set"},
    "kgfuse evaluate": OUTPUT | DATA | {"--config", "--only", "--no-train", "--stop-after-hours", "--run-set", "--model",
                                        "--data", "--graph", "--graph-input", "--knowledge-input", "--output", "--set"},
    "kgfuse predict": OUTPUT | DATA | {"--model", "--server", "--question", "--choices", "--questions", "--data", "--output",
                                       "--graph", "--threads", "--top-k", "--json"},
    "kgfuse serve": OUTPUT | {"--model", "--host", "--port", "--graph", "--threads"},
    "kgfuse explain": OUTPUT | {"--model", "--question", "--choice", "--graph", "--top-k"},
}


def _options(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        yield "/".join(action.option_strings) or action.dest, action


def test_the_commands_and_their_options_are_these():
    """Fails when a command, sub-command or option is added, renamed or lost."""
    got = {path: {name for name, _ in _options(parser)} for path, parser in _parsers(build_parser())}
    assert got == COMMANDS


def test_every_option_and_command_has_help_shown_in_its_help_page():
    """Fails when an option, argument or command is added without a help text, or hidden from --help."""
    missing = []
    for path, parser in _parsers(build_parser()):
        page = "".join(parser.format_help().split())  # argparse wraps lines, also at hyphens
        for name, action in _options(parser):
            text = "".join((action.help or "").split()) if action.help != argparse.SUPPRESS else ""
            if not text or text not in page:
                missing.append(f"{path}: {name}")
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for c in action._choices_actions:
                    text = "".join((c.help or "").split())
                    if not text or f"{c.dest}{text}" not in page:
                        missing.append(f"{path} {c.dest}: command")
    assert not missing, "options without help in --help:\n" + "\n".join(missing)


@pytest.mark.parametrize("argv, quiet, verbose", [
    (["graph", "info", "g"], False, 0),
    (["-q", "graph", "info", "g"], True, 0),
    (["graph", "info", "g", "--quiet"], True, 0),
    (["-v", "graph", "info", "g"], False, 1),
    (["train", "--config", "c.yaml", "-vv"], False, 2),
])
def test_quiet_and_verbose_before_or_after_the_command(argv, quiet, verbose):
    args = build_parser().parse_args(argv)
    assert (args.quiet, args.verbose) == (quiet, verbose)


def test_quiet_silences_transformers_and_verbose_shows_more():
    import huggingface_hub.utils as hub
    from transformers.utils import logging as tlog

    before = (tlog.get_verbosity(), tlog.is_progress_bar_enabled(), hub.are_progress_bars_disabled(),
              logging.getLogger("kgfuse").level)
    with cli_logging(-1, transformers=True):
        assert tlog.get_verbosity() == logging.ERROR
        assert not tlog.is_progress_bar_enabled() and hub.are_progress_bars_disabled()
        assert logging.getLogger("kgfuse").getEffectiveLevel() == logging.WARNING
    assert (tlog.get_verbosity(), tlog.is_progress_bar_enabled(), hub.are_progress_bars_disabled(),
            logging.getLogger("kgfuse").level) == before
    with cli_logging(1, transformers=True):
        assert tlog.get_verbosity() == logging.INFO
        assert logging.getLogger("kgfuse.tasks.evaluate").isEnabledFor(logging.DEBUG)
    assert tlog.get_verbosity() == before[0]


def test_messages_go_to_stderr_through_the_kgfuse_logger(capsys):
    log = logging.getLogger("kgfuse.tasks.evaluate")
    with cli_logging(0):
        log.info("an info line")
        log.debug("a debug line")
    err = capsys.readouterr().err
    assert "an info line" in err and "a debug line" not in err
    with cli_logging(-1):
        log.info("hidden")
        log.warning("a warning")
    err = capsys.readouterr().err
    assert "hidden" not in err and "a warning" in err
    with cli_logging(1):
        log.debug("a debug line")
    assert "DEBUG kgfuse.tasks.evaluate: a debug line" in capsys.readouterr().err
    log.warning("after the command")  # the handler is gone again
    assert "after the command" not in capsys.readouterr().err


def test_errors_are_logged_even_when_quiet(tmp_path, capsys):
    assert main(["-q", "graph", "info", str(tmp_path / "missing")]) == 2
    out = capsys.readouterr()
    assert "kgfuse graph: error:" in out.err and out.out == ""
