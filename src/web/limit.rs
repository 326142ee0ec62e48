//! The console's limits on account work, shared by its workers: password guessing per
//! address and per account (`auth::throttle`: the slot is taken before bcrypt runs, a try
//! made too early is answered 429 without a password check), and registrations per
//! address (`auth::attempts`).

use std::time::Duration;

use crate::auth::attempts::Attempts;
use crate::auth::throttle::{AddressKey, LoginThrottle};

/// The window `registrations_per_hour` counts in.
const REGISTRATION_WINDOW: Duration = Duration::from_secs(3600);

pub struct LoginLimiter {
    pub logins: LoginThrottle,
    pub registrations: Attempts<AddressKey>,
}

impl LoginLimiter {
    pub fn new(registrations_per_hour: u32) -> LoginLimiter {
        LoginLimiter {
            logins: LoginThrottle::default(),
            registrations: Attempts::new(registrations_per_hour, REGISTRATION_WINDOW),
        }
    }
}
