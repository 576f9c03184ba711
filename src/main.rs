//! Entry point: parses arguments and hands over to the studio or a headless subcommand.
fn main() {}
