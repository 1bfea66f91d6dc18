// The tracker lives here.
