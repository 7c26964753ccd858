"""A worker: one model behind the OpenAI API, one process per loaded model.

A request's path through the tree: app.py -> routes/ (one module per endpoint) ->
requests/ (bodies parsed once) -> prompt/ (chat template, tool instructions) ->
generation/ (admission, the job, the backend thread bridge, stop sequences) ->
backends/ (llama_cpp, mlx, scripted) -> parsing/ (reasoning and tool calls in the
output) -> answers/ (OpenAI chat and completion shapes, streamed or whole).
worker.py holds the loaded model, state.py its state machine, server.py runs it.
contract/ is what a worker publishes and the gateway reads.
"""
