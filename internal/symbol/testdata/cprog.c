/* cprog prints the address of beta and a return address inside alpha,
 * then blocks until stdin closes, so a test can symbolize them through
 * this process's /proc/PID/maps and the ELF symbol table. */
#include <stdio.h>

__attribute__((noinline)) void beta(void) {
	printf("%p beta\n", (void *)&beta);
	printf("%p alpha\n", __builtin_return_address(0));
	printf("ready\n");
	fflush(stdout);
	while (getchar() != EOF) {
	}
}

__attribute__((noinline)) void alpha(void) {
	beta();
	printf("done\n");
}

int main(void) {
	alpha();
	return 0;
}
