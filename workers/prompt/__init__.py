"""Building the prompt: the model's chat template in a sandbox, and tool instructions
for templates that cannot show tools."""
