//! `keygen`: a new minisign key pair for one role. The secret key is created with
//! mode 0600 and never overwrites an existing file; it is never printed.

use crate::cli::{KeygenArgs, Role};
use airlock_format::keys;
use airlock_format::output::Output;
use airlock_format::{Error, Result, fsutil};

/// The file stem for a role.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Vendor => "vendor",
        Role::Release => "release",
        Role::Approver => "approver",
        Role::Host => "host",
    }
}

/// Runs `keygen`.
pub fn run(a: &KeygenArgs, out: &Output) -> Result<()> {
    let name = role_name(a.role);
    let (pub_path, key_path) = (
        a.out.join(format!("{name}.pub")),
        a.out.join(format!("{name}.key")),
    );
    for p in [&pub_path, &key_path] {
        if p.exists() {
            return Err(Error::Unusable {
                message: format!(
                    "{} already exists, and airlock never overwrites a key",
                    p.display()
                ),
                hint: "move the old key pair away first, or choose another --out".into(),
            });
        }
    }
    std::fs::create_dir_all(&a.out).map_err(|e| Error::io("create", &a.out, e))?;
    let password = if a.no_password {
        None
    } else {
        let src = &a.password;
        let pw = src.get("Password for the new secret key: ")?;
        if src.file.is_none() && std::env::var_os("AIRLOCK_PASSWORD").is_none() {
            let again = src.get("Password again: ")?;
            if again != pw {
                return Err(Error::Invalid("the two passwords differ".into()));
            }
        }
        if pw.is_empty() {
            return Err(Error::Invalid(
                "empty password: give one, or use --no-password for an unencrypted key".into(),
            ));
        }
        Some(pw)
    };
    let key = keys::generate(password, name)?;
    fsutil::create_private(&key_path, key.secret.0.as_bytes())?;
    fsutil::write_atomic(&pub_path, key.public.as_bytes(), Some(0o644))?;
    if a.json {
        out.json(&serde_json::json!({
            "role": name,
            "key_id": key.id.to_string(),
            "public_key_file": pub_path,
            "secret_key_file": key_path,
            "encrypted": !a.no_password,
        }));
    } else {
        out.line(format!(
            "created {} (public) and {} (secret, mode 0600)",
            pub_path.display(),
            key_path.display()
        ));
        out.line(format!("{name} key id: {}", key.id));
    }
    Ok(())
}
