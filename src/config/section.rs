//! How a group of options is declared once: the `section!` macro writes a section's
//! struct, its defaults, its option names and how it reads its options from the flat file,
//! and the `Section` trait is what `Config` and the reload need of each.
//!
//! The file stays flat (`listen = …`, not `[network] listen = …`): a section is a grouping
//! in code, so every documented file keeps loading. Each section says whether `SIGHUP` may
//! change it in place, so the reload sorts options by section, not by a second field list.

use serde::de::MapAccess;

/// Whether a running broker can take a section's new values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    /// `SIGHUP` applies new values at once.
    Live,
    /// Bound or announced at start: a change is logged and waits for a restart.
    Restart,
}

/// What `Config` and the reload need of each section; written by `section!`.
pub trait Section: Default + PartialEq {
    /// The option names, as written in the file.
    const OPTIONS: &'static [&'static str];
    /// Whether a reload applies it.
    const RELOAD: Reload;
    /// Reads the value of `key` from `map` into its field; `false` when the option is not
    /// this section's (the value is then left unread).
    fn read_option<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> Result<bool, A::Error>;
    /// The names of the options whose value differs in `other`.
    fn changed(&self, other: &Self) -> Vec<&'static str>;
}

/// The name an option has in the file: the field's name, or the one given in parentheses
/// where the field would repeat its section's name (`chat.enabled` is `chat`).
macro_rules! option_name {
    ($field:ident) => {
        stringify!($field)
    };
    ($field:ident, $name:literal) => {
        $name
    };
}

/// Declares a section: `section! { /// doc  pub struct Name(Reload::Live) { /// doc
/// pub field: Type = default, pub other("file_name"): Type = default, } }`.
macro_rules! section {
    (
        $(#[$meta:meta])*
        pub struct $name:ident($reload:expr) {
            $(
                $(#[$field_meta:meta])*
                pub $field:ident $(($option:literal))?: $type:ty = $default:expr,
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(serde::Serialize, Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            $(
                $(#[$field_meta])*
                $(#[serde(rename = $option)])?
                pub $field: $type,
            )*
        }

        impl Default for $name {
            fn default() -> Self {
                $name {
                    $($field: $default,)*
                }
            }
        }

        impl $crate::config::section::Section for $name {
            const OPTIONS: &'static [&'static str] =
                &[$($crate::config::section::option_name!($field $(, $option)?)),*];
            const RELOAD: $crate::config::section::Reload = $reload;

            fn read_option<'de, A: serde::de::MapAccess<'de>>(
                &mut self,
                key: &str,
                map: &mut A,
            ) -> Result<bool, A::Error> {
                $(
                    if key == $crate::config::section::option_name!($field $(, $option)?) {
                        self.$field = map.next_value()?;
                        return Ok(true);
                    }
                )*
                Ok(false)
            }

            fn changed(&self, other: &Self) -> Vec<&'static str> {
                let mut names = Vec::new();
                $(
                    if self.$field != other.$field {
                        names.push($crate::config::section::option_name!($field $(, $option)?));
                    }
                )*
                names
            }
        }
    };
}

/// Declares `Config` from its sections: the struct (serialized flat, as the file is
/// written), reading a flat file into it, the list of every option, and the reload.
macro_rules! config {
    (
        $(#[$meta:meta])*
        pub struct Config {
            $(
                $(#[$field_meta:meta])*
                pub $section:ident: $type:ty,
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(serde::Serialize, Debug, Clone, PartialEq, Eq, Default)]
        pub struct Config {
            $(
                $(#[$field_meta])*
                #[serde(flatten)]
                pub $section: $type,
            )*
        }

        impl Config {
            /// Every option name the file may use, section by section.
            pub fn options() -> impl Iterator<Item = &'static str> {
                std::iter::empty()
                    $(.chain(<$type as $crate::config::section::Section>::OPTIONS.iter().copied()))*
            }

            /// Takes the sections of `new` that a running broker can apply (`Live`) and
            /// leaves the rest as they are; says which options changed, sorted by whether
            /// they were applied or wait for a restart.
            pub fn reload(&mut self, new: Config) -> $crate::config::section::Changes {
                use $crate::config::section::{Reload, Section};
                let mut changes = $crate::config::section::Changes::default();
                $(
                    let names = self.$section.changed(&new.$section);
                    match <$type as Section>::RELOAD {
                        Reload::Live => {
                            changes.applied.extend(names);
                            self.$section = new.$section;
                        }
                        Reload::Restart => changes.restart.extend(names),
                    }
                )*
                changes
            }
        }

        impl<'de> serde::Deserialize<'de> for Config {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Options;
                impl<'de> serde::de::Visitor<'de> for Options {
                    type Value = Config;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("a table of options")
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<Config, A::Error> {
                        use $crate::config::section::Section;
                        let mut config = Config::default();
                        while let Some(key) = map.next_key_seed($crate::config::section::KnownOption)? {
                            $(
                                if config.$section.read_option(key, &mut map)? {
                                    continue;
                                }
                            )*
                            return Err(serde::de::Error::unknown_field(key, &[]));
                        }
                        Ok(config)
                    }
                }
                deserializer.deserialize_map(Options)
            }
        }
    };
}

pub(crate) use {config, option_name, section};

/// What a reload changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Options of `Live` sections whose new value now applies.
    pub applied: Vec<&'static str>,
    /// Options of `Restart` sections that changed in the file and wait for a restart.
    pub restart: Vec<&'static str>,
}

/// Reads an option name and refuses one that no section has, at the key, so the error
/// carries the key's position in the file.
pub struct KnownOption;

impl<'de> serde::de::DeserializeSeed<'de> for KnownOption {
    type Value = &'static str;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<&'static str, D::Error> {
        struct Name;
        impl serde::de::Visitor<'_> for Name {
            type Value = &'static str;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an option name")
            }
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<&'static str, E> {
                super::Config::options()
                    .find(|known| *known == name)
                    .ok_or_else(|| E::unknown_field(name, &[]))
            }
        }
        d.deserialize_identifier(Name)
    }
}
