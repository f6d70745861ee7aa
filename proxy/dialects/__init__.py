"""Pure translations between the dialects clients speak and OpenAI chat completions.

The gateway's request path speaks chat completions; `/v1/messages` (Anthropic)
and `/v1/responses` (OpenAI Responses) translate their request into a chat body
here, call the same pipeline, and translate the answer back. Nothing in this
package does I/O or knows about HTTP.
"""
