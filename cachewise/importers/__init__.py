"""Traffic that was never wrapped, read into ledger records: Claude Code session logs (docs/why.md)."""

from __future__ import annotations

from .claude_code import ClaudeCodeImport, default_root, read_claude_code

__all__ = ["ClaudeCodeImport", "default_root", "read_claude_code"]
