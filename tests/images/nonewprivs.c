/* nonewprivs: installed setuid root in the test image; prints the effective
 * uid so a test can tell whether no_new_privs stopped the escalation. */
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	printf("Effective uid: %d\n", (int)geteuid());
	return 0;
}
