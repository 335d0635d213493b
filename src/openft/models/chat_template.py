"""The ChatML-style chat template of the built-in models, and the parser for the tool calls it writes.

A conversation renders as one block per message:

    <|im_start|>{role}\\n{content}<|im_end|>\\n

Top-level `tools` go into the first system/developer block (or a system block of their own), and an
assistant's `tool_calls` follow its content, one `<tool_call>{json}</tool_call>` line per call. Every block
depends only on its own message, so rendering a conversation one message at a time gives the same text
as rendering it whole (openft.data.render relies on that).
"""

from __future__ import annotations

import json
import re
from typing import Any

END_OF_TEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = (END_OF_TEXT, IM_START, IM_END)

TOOLS_PREAMBLE = (
    "# Tools\n\nYou may call one or more functions to help with the request. The functions:\n<tools>\n"
)
TOOLS_USAGE = (
    "</tools>\n\nTo call a function, write one line per call:\n"
    '<tool_call>{"name": <function name>, "arguments": <arguments as a JSON object>}</tool_call>'
)


def _literal(text: str) -> str:
    """A Jinja string literal (Jinja decodes backslash escapes in literals)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


# Every character of output comes from a {{ ... }} expression; the `-` markers strip the layout whitespace.
CHATML_TEMPLATE = f"""
{{%- macro text(content) -%}}
  {{%- if content is string -%}}{{{{- content -}}}}
  {{%- elif content is iterable and content is not mapping -%}}
    {{%- for part in content if part.type == 'text' -%}}{{{{- part.text -}}}}{{%- endfor -%}}
  {{%- endif -%}}
{{%- endmacro -%}}
{{%- macro tools_block() -%}}
  {{{{- {_literal(TOOLS_PREAMBLE)} -}}}}
  {{%- for tool in tools -%}}{{{{- tool | tojson -}}}}{{{{- '\\n' -}}}}{{%- endfor -%}}
  {{{{- {_literal(TOOLS_USAGE)} -}}}}
{{%- endmacro -%}}
{{%- set merge_tools = tools and messages and messages[0].role in ['system', 'developer'] -%}}
{{%- if tools and not merge_tools -%}}
  {{{{- '<|im_start|>system\\n' -}}}}{{{{- tools_block() -}}}}{{{{- '<|im_end|>\\n' -}}}}
{{%- endif -%}}
{{%- for message in messages -%}}
  {{{{- '<|im_start|>' + message.role + '\\n' -}}}}
  {{%- if loop.first and merge_tools -%}}
    {{%- set head = text(message.content) -%}}
    {{{{- head -}}}}{{{{- '\\n\\n' if head else '' -}}}}{{{{- tools_block() -}}}}
  {{%- elif message.role == 'assistant' -%}}
    {{%- set content = text(message.content) -%}}
    {{{{- content -}}}}
    {{%- for call in message.tool_calls or [] -%}}
      {{%- set fn = call.function if call.function is defined else call -%}}
      {{{{- '\\n' if content or not loop.first else '' -}}}}
      {{{{- '<tool_call>{{"name": ' -}}}}{{{{- fn.name | tojson -}}}}{{{{- ', "arguments": ' -}}}}
      {{{{- fn.arguments if fn.arguments is string else (fn.arguments or {{}}) | tojson -}}}}
      {{{{- '}}</tool_call>' -}}}}
    {{%- endfor -%}}
  {{%- else -%}}
    {{{{- text(message.content) -}}}}
  {{%- endif -%}}
  {{{{- '<|im_end|>\\n' -}}}}
{{%- endfor -%}}
{{%- if add_generation_prompt -%}}{{{{- '<|im_start|>assistant\\n' -}}}}{{%- endif -%}}
""".strip()

_TOOL_CALL = re.compile(r"<tool_call>(.*?)</tool_call>\n?", re.DOTALL)


def parse_tool_calls(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Split generated assistant text into its content and OpenAI-shaped tool calls (without ids).

    A `<tool_call>` line whose JSON does not parse stays in the content, so nothing the model wrote is lost.
    """
    calls: list[dict[str, Any]] = []

    def take(match: re.Match[str]) -> str:
        try:
            call = json.loads(match.group(1))
        except json.JSONDecodeError:
            return match.group(0)
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            return match.group(0)
        arguments = call.get("arguments", {})
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False)
        calls.append({"type": "function", "function": {"name": call["name"], "arguments": arguments}})
        return ""

    content = _TOOL_CALL.sub(take, text)
    return (content.rstrip("\n") if calls else content), calls
