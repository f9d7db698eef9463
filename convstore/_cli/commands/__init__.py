"""The subcommands: each is an async function of the parsed arguments returning the exit status."""
