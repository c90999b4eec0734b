//! `flowsight token new`: a random API token and the hashed line for `api_tokens`.

use anyhow::{Result, anyhow};
use clap::{Args, Subcommand};

#[derive(Args, Debug)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Make a random API token; prints the token (for the client, shown once) and the line
    /// to add to flowsight.toml (only its SHA-256 digest is stored).
    New,
    /// Print the `api_tokens` entry of an existing token (read from stdin).
    Hash,
}

pub fn run(a: TokenArgs) -> Result<()> {
    match a.command {
        TokenCommand::New => {
            let t = flowsight_web::auth::new_token()
                .map_err(|_| anyhow!("the operating system's random source failed"))?;
            let line = flowsight_web::auth::digest_line(&flowsight_web::auth::token_digest(&t));
            println!("{t}");
            eprintln!(
                "flowsight: the token is above (give it to the API client; it is not stored).\n\
                 flowsight: add its digest to flowsight.toml:\n  api_tokens = [\"{line}\"]\n\
                 flowsight: clients send it as `Authorization: Bearer <token>`"
            );
        }
        TokenCommand::Hash => {
            let mut t = String::new();
            std::io::stdin().read_line(&mut t)?;
            let t = t.trim();
            if t.is_empty() {
                return Err(anyhow!(
                    "no token on stdin: echo \"$TOKEN\" | flowsight token hash"
                ));
            }
            println!(
                "{}",
                flowsight_web::auth::digest_line(&flowsight_web::auth::token_digest(t))
            );
        }
    }
    Ok(())
}
