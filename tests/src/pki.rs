//! A test certificate authority made with openssl: a CA, and server certificates it
//! signs, good or bad (expired, for another name), for the TLS tests.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::require_tool;

/// A CA in a directory of its own.
pub struct Pki {
    dir: PathBuf,
    pub ca: PathBuf,
}

/// A certificate and its key, as PEM files.
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new(require_tool("openssl", "openssl"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pki {
    /// A new CA called `name`, under `parent/name`.
    pub fn new(parent: &Path, name: &str) -> Pki {
        let dir = parent.join(name);
        std::fs::create_dir_all(dir.join("newcerts")).expect("pki dir");
        std::fs::write(dir.join("index.txt"), "").expect("index");
        std::fs::write(dir.join("serial"), "1000\n").expect("serial");
        openssl(
            &dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "30",
                "-subj",
                &format!("/CN={name}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        std::fs::write(
            dir.join("ca.cnf"),
            format!(
                "[ca]\ndefault_ca = own\n[own]\ndir = {d}\ndatabase = {d}/index.txt\n\
                 new_certs_dir = {d}/newcerts\ncertificate = {d}/ca.pem\nprivate_key = {d}/ca.key\n\
                 serial = {d}/serial\ndefault_md = sha256\npolicy = any\nunique_subject = no\n\
                 copy_extensions = none\n[any]\ncommonName = supplied\n",
                d = dir.display()
            ),
        )
        .expect("ca.cnf");
        Pki {
            ca: dir.join("ca.pem"),
            dir,
        }
    }

    /// A server certificate for `name` (a DNS name), valid from `start` to `end`
    /// (openssl's YYYYMMDDHHMMSSZ), or for the next 30 days when None.
    pub fn issue(&self, file: &str, name: &str, dates: Option<(&str, &str)>) -> Issued {
        let key = self.dir.join(format!("{file}.key"));
        let csr = self.dir.join(format!("{file}.csr"));
        let cert = self.dir.join(format!("{file}.pem"));
        let ext = self.dir.join(format!("{file}.ext"));
        std::fs::write(
            &ext,
            format!(
                "subjectAltName = DNS:{name}\nbasicConstraints = critical,CA:FALSE\n\
                 keyUsage = critical,digitalSignature\nextendedKeyUsage = serverAuth,clientAuth\n"
            ),
        )
        .expect("ext");
        let (k, c, x) = (
            key.to_string_lossy(),
            csr.to_string_lossy(),
            ext.to_string_lossy(),
        );
        openssl(
            &self.dir,
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &k,
                "-out",
                &c,
                "-subj",
                &format!("/CN={name}"),
            ],
        );
        let (start, end) = dates.unwrap_or(("", ""));
        let cnf = self.dir.join("ca.cnf");
        let mut args = vec![
            "ca",
            "-batch",
            "-notext",
            "-config",
            cnf.to_str().expect("utf-8"),
            "-in",
            &c,
            "-out",
            cert.to_str().expect("utf-8"),
            "-extfile",
            &x,
        ];
        if dates.is_some() {
            args.extend(["-startdate", start, "-enddate", end]);
        } else {
            args.extend(["-days", "30"]);
        }
        openssl(&self.dir, &args);
        Issued { cert, key }
    }
}
