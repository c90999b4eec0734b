//! `flowsight user add NAME`: the `[[users]]` entry of a portal login, with the password
//! hashed (PBKDF2-HMAC-SHA256); the password itself is never written anywhere.

use anyhow::{Result, anyhow};
use clap::{Args, Subcommand};
use std::io::IsTerminal;

#[derive(Args, Debug)]
pub struct UserArgs {
    #[command(subcommand)]
    pub command: UserCommand,
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Print the `[[users]]` entry for NAME; the password is read from stdin (one line).
    Add {
        /// Login name (letters, digits, `.`, `_`, `-`, `@`).
        name: String,
        /// PBKDF2 iterations (default 600000; fewer make logins faster and guessing cheaper).
        #[arg(long, default_value_t = flowsight_web::auth::DEFAULT_ITERATIONS)]
        iterations: u32,
    },
}

/// One line from stdin; on a terminal, with echo off (restored whatever happens).
fn read_password(name: &str) -> Result<String> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    let mut pw = String::new();
    if !stdin.is_terminal() {
        stdin.read_line(&mut pw)?;
        return Ok(pw);
    }
    eprint!("flowsight: password for {name}: ");
    let saved = tcgetattr(&stdin)?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    quiet.local_flags.insert(LocalFlags::ECHONL);
    tcsetattr(&stdin, SetArg::TCSANOW, &quiet)?;
    let read = stdin.read_line(&mut pw);
    tcsetattr(&stdin, SetArg::TCSANOW, &saved)?;
    read?;
    Ok(pw)
}

pub fn run(a: UserArgs) -> Result<()> {
    match a.command {
        UserCommand::Add { name, iterations } => {
            if !(10_000..=10_000_000).contains(&iterations) {
                return Err(anyhow!(
                    "--iterations {iterations}: 10000 to 10000000 (the default is 600000)"
                ));
            }
            // The name is checked before the password is asked for and hashed.
            flowsight_collector::Config {
                users: vec![flowsight_collector::config::UserConfig {
                    name: name.clone(),
                    password: format!(
                        "pbkdf2-sha256$10000${}${}",
                        "00".repeat(16),
                        "00".repeat(32)
                    ),
                }],
                ..Default::default()
            }
            .validate()?;
            let pw = read_password(&name)?;
            let pw = pw.trim_end_matches(['\r', '\n']);
            if pw.len() < 8 {
                return Err(anyhow!(
                    "the password is shorter than 8 characters: choose a longer one \
                     (e.g. `openssl rand -base64 15 | flowsight user add {name}`)"
                ));
            }
            let line = flowsight_web::auth::hash_password(pw, iterations)
                .map_err(|_| anyhow!("the operating system's random source failed"))?;
            // Validated like the configuration would be, so the printed entry always loads.
            let cfg = flowsight_collector::Config {
                users: vec![flowsight_collector::config::UserConfig {
                    name: name.clone(),
                    password: line.clone(),
                }],
                ..Default::default()
            };
            cfg.validate()?;
            println!("[[users]]\nname = \"{name}\"\npassword = \"{line}\"");
            eprintln!("flowsight: add the entry above to flowsight.toml and restart serve");
        }
    }
    Ok(())
}
